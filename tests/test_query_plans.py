"""Every read a page or the API issues examines about one page of documents, whatever the history.

The bank here has one heavy customer with thousands of transfers and notifications, so a read
whose index range follows the history (a scan, an unbounded range sorted in memory, a count)
examines thousands of documents and fails; a read bounded by the page examines tens. Each read
is replayed through the real server's `explain` (tests/query_plans.py).
"""

import html
import re

import pytest
from django.test import Client

from accounts.auth import token_issue
from accounts.models import Account, Role
from accounts.services import system_bootstrap
from aegis.clock import bank_time, now_ms
from aegis.mongo import get_db
from loadtest.scale import bank_generate, rollups_refresh
from tests.factories import make_user
from tests.query_plans import examined, recorded, recording_queries

# Comfortably above a page (50 rows at most, joined rows, a few window probes), far below history.
MAX_EXAMINED = 250
# Collections that grow with the bank's history: never scanned.
HISTORY = {"transactions", "ledger_entries", "notifications", "outbox_events", "audit_logs", "django_session"}
OLDER = re.compile(r'<a[^>]*rel="next"[^>]*href="([^"]+)"')

pytestmark = pytest.mark.slow


@pytest.fixture
def bank(tmp_path, settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"
    system_bootstrap(credentials_path=tmp_path / "credentials.json")
    book = bank_generate(size=8_000, customers=40, batch=2_000, seed=3, notifications=2_000, log=lambda _m: None)
    rollups_refresh()
    heavy = Account.objects.select_related("user").get(pk=book.heavy)
    assert heavy.ledger_seq > MAX_EXAMINED * 3  # the history is long enough for a scan to show
    return heavy


def _older(client: Client, url: str) -> str:
    body = client.get(url).content.decode()
    found = OLDER.search(body)
    assert found, f"{url} has no Older link"
    return html.unescape(found.group(1))


def test_every_page_and_api_read_is_bounded_by_its_page(bank):
    heavy_user = bank.user
    staff = make_user(role=Role.ADMIN, name="Staff")
    customer = Client()
    customer.force_login(heavy_user)
    admin = Client()
    admin.force_login(staff)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=heavy_user)}")
    staff_api = Client(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=staff)}")
    acct = str(bank.pk)
    some_txn = str(get_db()["transactions"].find_one({"from_account_id": bank.pk}, {"_id": 1})["_id"])
    history_older = _older(customer, "/transactions")
    notes_older = _older(customer, "/notifications")
    staff_older = _older(admin, "/staff/transactions")
    failed_older = _older(admin, "/staff/transactions?status=FAILED")
    middle = get_db()["ledger_entries"].find_one({"account_id": bank.pk, "seq": bank.ledger_seq // 2})
    as_of = middle["created_at"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    today = bank_time(now_ms()).date().isoformat()
    api_next = api.get(f"/api/transactions/{acct}?limit=20").json()["nextCursor"]
    staff_next = staff_api.get("/api/admin/transactions?limit=20").json()["nextCursor"]

    reads = [
        (customer, "/dashboard"),
        (customer, "/transactions"),
        (customer, f"/transactions{history_older}"),
        (customer, "/transactions?page=3"),
        (customer, "/transfer"),
        (customer, "/notifications"),
        (customer, f"/notifications{notes_older}"),
        (customer, "/notifications/poll?since=0"),
        (customer, f"/statement?from={today}&to={today}"),
        (customer, f"/statement/download?from={today}&to={today}&format=csv"),
        (customer, f"/transactions/{some_txn}"),
        (api, "/api/accounts"),
        (api, f"/api/accounts/balance/{acct}"),
        (api, f"/api/transactions/{acct}?limit=20"),
        (api, f"/api/transactions/{acct}?limit=20&page=40"),
        (api, f"/api/transactions/{acct}?limit=20&cursor={api_next}"),
        (api, f"/api/accounts/balance/{acct}?asOf={as_of}"),
        (api, f"/api/accounts/balance/{acct}?asOf=2026-01-01"),
        (api, f"/api/transactions/{some_txn}/receipt"),
        (api, f"/api/accounts/{acct}/statement?from={today}&to={today}&format=csv"),
        (admin, "/staff/users"),
        (admin, "/staff/transactions"),
        (admin, f"/staff/transactions{staff_older}"),
        (admin, "/staff/transactions?status=FAILED"),
        (admin, f"/staff/transactions{failed_older}"),
        (admin, f"/staff/transactions?account={acct}"),
        (admin, f"/staff/transactions?account={acct}&status=COMPLETED"),
        (admin, f"/staff/transactions/{some_txn}"),
        (admin, f"/staff/users/{heavy_user.pk}"),
        (admin, f"/staff/accounts/{acct}/statement?from={today}&to={today}"),
        (admin, "/staff/stats"),
        (admin, "/staff/events"),
        (admin, "/metrics"),
        (staff_api, "/api/admin/users"),
        (staff_api, "/api/admin/transactions?limit=20"),
        (staff_api, f"/api/admin/transactions?limit=20&cursor={staff_next}"),
        (staff_api, "/api/admin/transactions?status=FAILED"),
        (staff_api, f"/api/admin/transactions?accountId={acct}"),
        (staff_api, "/api/admin/stats"),
    ]
    db = get_db()
    with recording_queries() as record:
        for client, url in reads:
            with record(url):
                response = client.get(url)
                if response.streaming:  # a streamed statement reads as it is sent
                    b"".join(response.streaming_content)
            assert response.status_code == 200, (url, response.status_code)

    commands = recorded()
    assert {c.label for c in commands} == {url for _client, url in reads}  # every route read something
    faults = []
    for item in commands:
        target = item.command.get(item.name)
        docs, stages = examined(db, item)
        # A hint is a fault too: the embedded server answers a hinted find by walking the whole
        # hinted index (and its explain then counts only the matches), so hints stay out of the app.
        if docs > MAX_EXAMINED or ("COLLSCAN" in stages and target in HISTORY) or "hint" in item.command:
            faults.append(f"{item.label}: {item.name} {target} examined {docs} ({sorted(stages)}) {item.command}")
    assert not faults, "\n".join(faults)
