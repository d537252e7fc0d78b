"""The transfer page's reads stay bounded whatever the sender's history: the review, the send, a
replayed press, and the dashboard's one polled partial (card, chart and activity together).

A heavy customer with thousands of transfers; each read the requests issue is replayed through
the real server's `explain` (tests/query_plans.py). A read whose range follows the history (the
sender's transfers scanned to find one key) examines thousands of documents and fails.
"""

import re

import pytest

from accounts.models import Account
from accounts.services import system_bootstrap
from aegis.mongo import get_db
from loadtest.scale import bank_generate
from tests.factories import make_account, make_user
from tests.pages.conftest import client_for, htmx_client_for
from tests.query_plans import examined, recorded, recording_queries
from transfers.services import system_fund

MAX_EXAMINED = 250  # as tests/test_query_plans.py: about a page, far below the history
HISTORY = {"transactions", "ledger_entries", "notifications", "outbox_events", "audit_logs", "django_session"}
TOKEN = re.compile(r'name="review_token" value="([^"]+)"')

pytestmark = pytest.mark.slow


@pytest.fixture
def heavy(tmp_path, settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"
    bootstrap = system_bootstrap(credentials_path=tmp_path / "credentials.json")
    book = bank_generate(size=8_000, customers=20, batch=2_000, seed=5, notifications=0, log=lambda _m: None)
    account = Account.objects.select_related("user").get(pk=book.heavy)
    sent = get_db()["transactions"].count_documents({"from_account_id": account.pk})
    assert sent > MAX_EXAMINED * 1.4  # long enough for a scan of the sender's transfers to show
    system_fund(actor=bootstrap.system_user, to_account_id=str(account.pk), amount_paise=10_000, idempotency_key="p")
    return account


def test_review_send_replay_and_dashboard_poll_are_bounded(heavy):
    receiver = make_account(user=make_user(name="Ravi Kumar"))
    client, htmx = client_for(heavy.user), htmx_client_for(heavy.user)
    form = {"to_account": str(receiver.pk), "amount": "1", "idempotency_key": "plan-key-1"}
    with recording_queries() as record:
        with record("GET /transfer"):
            assert client.get("/transfer").status_code == 200
        with record("review"):
            page = client.post("/transfer", form | {"step": "review"})
            token = TOKEN.search(page.content.decode()).group(1)
        with record("send"):
            sent = form | {"step": "send", "review_token": token, "confirm_name": "on"}
            assert client.post("/transfer", sent).status_code == 302
        with record("result"):
            assert client.get("/transfer?key=plan-key-1").status_code == 200
        with record("replayed press"):
            assert "nothing was sent again" in htmx.post("/transfer", sent).content.decode()
        with record("dashboard poll"):
            assert htmx.get("/dashboard").status_code == 200

    db = get_db()
    labels, faults = set(), []
    for item in recorded():
        labels.add(item.label)
        target = item.command.get(item.name)
        docs, stages = examined(db, item)
        if docs > MAX_EXAMINED or ("COLLSCAN" in stages and target in HISTORY) or "hint" in item.command:
            faults.append(f"{item.label}: {item.name} {target} examined {docs} ({sorted(stages)}) {item.command}")
    assert labels == {"GET /transfer", "review", "send", "result", "replayed press", "dashboard poll"}
    assert not faults, "\n".join(faults)
