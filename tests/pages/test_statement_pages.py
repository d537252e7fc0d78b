"""Statement and receipt pages, customer and staff: figures, downloads, bad ranges, who may see what.

The history is written through the real transfer path with its clock set back (transfers.services
reads `now_ms`), so entries fall before, on and after the statement's boundaries.
"""

import csv
import io
from datetime import datetime, time, timedelta

import pytest

from aegis.clock import BANK_TZ, bank_day_start_of, bank_time, now_ms
from aegis.money import format_inr
from aegis.mongo import collection
from ledger.models import AuditAction, AuditLog
from ledger.selectors import balance_as_of
from statements.selectors import statement_period
from tests.factories import make_account, make_user
from tests.pages.conftest import client_for
from transfers import exceptions as exc
from transfers import services as transfer_services
from transfers.services import system_fund, transfer_create

TODAY = bank_time(now_ms()).date()
FIRST, LAST = TODAY - timedelta(days=3), TODAY - timedelta(days=1)
RANGE = f"from={FIRST.isoformat()}&to={LAST.isoformat()}"


@pytest.fixture
def clock(monkeypatch):
    """clock.at(instant): the transfer path's `now` from here on (None: the real clock)."""

    class Clock:
        now = None

        def at(self, instant):
            self.now = instant

    state = Clock()
    real = transfer_services.now_ms
    monkeypatch.setattr(transfer_services, "now_ms", lambda: state.now or real())
    return state


def ist(day, hour=12):
    return datetime.combine(day, time(hour), tzinfo=BANK_TZ)


@pytest.fixture
def history(bootstrap, clock):
    """Priya's account across the period FIRST..LAST (IST):

    before it: +₹5,000 funding, −₹1,000 to Ravi; exactly at its start: −₹200; inside: +₹300 from
    Ravi and a FAILED attempt (no entry); exactly at its end (midnight after LAST): −₹50.
    Opening ₹4,000, closing ₹4,100, two entries.
    """
    opened = ist(TODAY - timedelta(days=30))  # nothing of an account predates its opening
    priya = make_account(user=make_user(name="Priya Sharma"), created_at=opened)
    ravi = make_account(user=make_user(name="Ravi Kumar"), created_at=opened)
    sent = {}

    def send(account, to, paise, key, at):
        clock.at(at)
        try:
            sent[key] = transfer_create(
                actor=account.user,
                from_account_id=str(account.pk),
                to_account_id=str(to.pk),
                amount_paise=paise,
                idempotency_key=key,
                note=key,
            ).transaction
        except exc.TransferFailed as refusal:
            sent[key] = refusal.transaction

    clock.at(ist(TODAY - timedelta(days=10)))
    system_fund(actor=bootstrap.system_user, to_account_id=str(priya.pk), amount_paise=500_000, idempotency_key="f-1")
    send(priya, ravi, 100_000, "before", ist(TODAY - timedelta(days=5)))
    send(priya, ravi, 20_000, "at-start", bank_day_start_of(FIRST))
    send(ravi, priya, 30_000, "inside", ist(FIRST + timedelta(days=1)))
    send(priya, ravi, 900_000, "too-much", ist(FIRST + timedelta(days=1), 13))
    send(priya, ravi, 5_000, "at-end", bank_day_start_of(LAST + timedelta(days=1)))
    clock.at(None)
    priya.refresh_from_db()
    ravi.refresh_from_db()
    return priya, ravi, sent


def test_the_summary_shows_the_balances_as_of_the_bounds(history):
    priya, _, _ = history
    period = statement_period(FIRST.isoformat(), LAST.isoformat())
    opening = balance_as_of(account=priya, instant=period.start, before=True)
    closing = balance_as_of(account=priya, instant=period.end, before=True)
    assert (opening.balance, closing.balance, closing.seq - opening.seq) == (400_000, 410_000, 2)
    response = client_for(priya.user).get(f"/statement?{RANGE}")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-testid="statement-opening">{format_inr(opening.balance)}<' in html
    assert f'data-testid="statement-closing"><strong>{format_inr(closing.balance)}<' in html
    assert 'data-testid="statement-entries">2<' in html and "Priya Sharma" in html and str(priya.pk) in html
    assert f"/statement/download?{RANGE.replace('&', '&amp;')}&amp;format=csv" in html


def test_the_page_defaults_to_this_month_and_the_transactions_page_links_it(history):
    priya, _, _ = history
    client = client_for(priya.user)
    html = client.get("/statement").content.decode()
    first = TODAY.replace(day=1).isoformat()
    assert f'type="date" name="from" value="{first}"' in html and f'name="to" value="{TODAY.isoformat()}"' in html
    assert 'data-testid="statement-summary"' in html
    listing = client.get("/transactions")
    assert listing.status_code == 200 and 'href="/statement"' in listing.content.decode()


def test_csv_download_is_the_ledger_of_the_period(history):
    priya, ravi, sent = history
    response = client_for(priya.user).get(f"/statement/download?{RANGE}&format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment") and f"{FIRST.isoformat()}-to-{LAST.isoformat()}.csv" in disposition
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) >= 3
    joined = text.replace(",", " ")
    assert str(_id(sent["at-start"])) in text and str(_id(sent["inside"])) in text
    assert str(_id(sent["before"])) not in text and str(_id(sent["at-end"])) not in text
    assert "Ravi K." in joined and "Ravi Kumar" not in joined  # a customer sees a masked counterparty
    assert "4100.00" in text and "200.00" in text and "300.00" in text


def _id(txn: dict) -> str:
    return str(txn["_id"])


def test_pdf_download_is_a_pdf_attachment(history):
    priya, _, _ = history
    response = client_for(priya.user).get(f"/statement/download?{RANGE}&format=pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment") and ".pdf" in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01&to=2026-12-01", "from must be a date written YYYY-MM-DD"),
        (f"from={TODAY.isoformat()}&to={(TODAY - timedelta(days=1)).isoformat()}", "to must be on or after from"),
        (f"from={(TODAY - timedelta(days=400)).isoformat()}&to={TODAY.isoformat()}", "at most 366 days"),
        (f"from={TODAY.isoformat()}&to={(TODAY + timedelta(days=1)).isoformat()}", "cannot be after today"),
        ("from=&to=", "must be a date written YYYY-MM-DD"),
    ],
)
def test_a_bad_range_answers_400_with_the_reason(sender, query, message):
    client = client_for(sender.user)
    page = client.get(f"/statement?{query}")
    assert page.status_code == 400 and message in page.content.decode()
    assert 'data-testid="statement-form"' in page.content.decode()  # the form again, with its errors
    for fmt in ("csv", "pdf"):
        download = client.get(f"/statement/download?{query}&format={fmt}")
        assert download.status_code == 400 and message in download.content.decode()
        assert "attachment" not in download.get("Content-Disposition", "")


def test_an_unknown_format_answers_400(sender):
    response = client_for(sender.user).get(f"/statement/download?{RANGE}&format=xlsx")
    assert response.status_code == 400 and "format must be one of: csv, pdf" in response.content.decode()


def test_a_pdf_too_long_answers_400_suggesting_csv(history, monkeypatch):
    from statements import documents, selectors

    monkeypatch.setattr(selectors, "PDF_MAX_ENTRIES", 1)
    monkeypatch.setattr(documents, "PDF_MAX_ENTRIES", 1, raising=False)
    priya, _, _ = history
    client = client_for(priya.user)
    response = client.get(f"/statement/download?{RANGE}&format=pdf")
    assert response.status_code == 400 and "CSV" in response.content.decode()
    assert client.get(f"/statement/download?{RANGE}&format=csv").status_code == 200


def test_without_an_account_the_page_says_open_it(db):
    client = client_for(make_user())
    response = client.get("/statement")
    assert response.status_code == 200 and "Open your account" in response.content.decode()
    assert client.get(f"/statement/download?{RANGE}&format=csv").status_code == 404


def test_the_receipt_shows_a_failed_transfer_and_its_attempts_to_its_sender_only(history, staff):
    priya, ravi, sent = history
    failed = _id(sent["too-much"])
    page = client_for(priya.user).get(f"/transactions/{failed}")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-status="FAILED"' in html
    assert 'data-testid="receipt-failure"' in html and 'data-testid="attempt"' in html
    assert f"/transactions/{failed}/receipt.pdf" in html
    # The receiver never sees the sender's failures: the same 404 as an unknown id.
    assert client_for(ravi.user).get(f"/transactions/{failed}").status_code == 404
    assert client_for(ravi.user).get(f"/transactions/{failed}/receipt.pdf").status_code == 404
    staff_view = client_for(staff).get(f"/transactions/{failed}").content.decode()
    assert 'data-testid="attempt"' in staff_view and 'data-testid="receipt-failure"' in staff_view


def test_the_receipt_of_a_completed_transfer_for_both_sides(history):
    priya, ravi, sent = history
    done = _id(sent["inside"])  # Ravi -> Priya, ₹300
    mine = client_for(priya.user).get(f"/transactions/{done}").content.decode()
    assert 'data-status="COMPLETED"' in mine and format_inr(30_000) in mine
    assert f'data-testid="receipt-balance-after">{format_inr(410_000)}<' in mine
    assert "Ravi K." in mine and 'data-testid="attempt"' not in mine  # the receiver: no retry history
    theirs = client_for(ravi.user).get(f"/transactions/{done}").content.decode()
    assert "Ravi Kumar" in theirs and "Priya S." in theirs
    pdf = client_for(priya.user).get(f"/transactions/{done}/receipt.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_another_customers_receipt_is_not_found(history):
    _, _, sent = history
    stranger = client_for(make_account().user)
    for txn in sent.values():
        assert stranger.get(f"/transactions/{_id(txn)}").status_code == 404
        assert stranger.get(f"/transactions/{_id(txn)}/receipt.pdf").status_code == 404
    assert stranger.get("/transactions/not-an-id").status_code == 404
    assert stranger.get("/transactions/" + "0" * 24).status_code == 404


def test_the_history_and_the_transfer_result_link_the_receipt(history):
    priya, _, sent = history
    client = client_for(priya.user)
    listing = client.get("/transactions").content.decode()
    assert f'href="/transactions/{_id(sent["inside"])}"' in listing
    result = client.get("/transfer?key=at-start")
    assert f'href="/transactions/{_id(sent["at-start"])}"' in result.content.decode()


def test_staff_pages_about_statements_are_for_admins_only(history):
    priya, _, _ = history
    customer = client_for(priya.user)
    for path in (
        f"/staff/users/{priya.user.pk}",
        f"/staff/accounts/{priya.pk}/statement?{RANGE}",
        f"/staff/accounts/{priya.pk}/statement/download?{RANGE}&format=csv",
    ):
        assert customer.get(path).status_code == 403, path
        anonymous = client_for(priya.user)
        anonymous.logout()
        assert anonymous.get(path).status_code == 302, path  # to the login page


def test_staff_user_detail_shows_the_account_and_its_last_entries(history, staff):
    priya, _, sent = history
    client = client_for(staff)
    users = client.get("/staff/users").content.decode()
    assert f'href="/staff/users/{priya.user.pk}"' in users
    response = client.get(f"/staff/users/{priya.user.pk}")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Priya Sharma" in html and priya.user.email in html and str(priya.pk) in html
    assert f'data-testid="account-balance"><strong>{format_inr(priya.balance)}<' in html
    assert f"/staff/accounts/{priya.pk}/status?status=FROZEN" in html
    assert f'action="/staff/accounts/{priya.pk}/statement"' in html
    assert f"/staff/transactions/{_id(sent['at-end'])}" in html  # the newest entry's transaction
    for path in ("/staff/users/nope", "/staff/users/" + "0" * 24, "/staff/accounts/" + "0" * 24 + "/statement"):
        assert client.get(path).status_code == 404, path
    assert client.get("/staff/accounts/nope/statement/download?" + RANGE + "&format=csv").status_code == 404


def test_staff_statement_download_is_audited_with_full_names(history, staff):
    priya, _, _ = history
    client = client_for(staff)
    summary = client.get(f"/staff/accounts/{priya.pk}/statement?{RANGE}").content.decode()
    assert f'data-testid="statement-closing"><strong>{format_inr(410_000)}<' in summary
    assert f"/staff/accounts/{priya.pk}/statement/download?" in summary
    audits = collection(AuditLog)
    assert audits.count_documents({"action": AuditAction.STATEMENT_DOWNLOADED}) == 0  # viewing is not downloading
    response = client.get(f"/staff/accounts/{priya.pk}/statement/download?{RANGE}&format=csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert response.status_code == 200 and "Ravi Kumar" in text
    entry = audits.find_one({"action": AuditAction.STATEMENT_DOWNLOADED})
    assert entry["actor_id"] == str(staff.pk) and entry["user_id"] == str(priya.user.pk)
    assert entry["details"] == {
        "accountId": str(priya.pk),
        "from": FIRST.isoformat(),
        "to": LAST.isoformat(),
        "format": "csv",
    }
    assert client.get(f"/staff/accounts/{priya.pk}/statement/download?{RANGE}&format=pdf").status_code == 200
    assert audits.count_documents({"action": AuditAction.STATEMENT_DOWNLOADED}) == 2
    # A refused download is not a download: nothing more is recorded.
    assert client.get(f"/staff/accounts/{priya.pk}/statement/download?from=x&to=y&format=csv").status_code == 400
    assert audits.count_documents({"action": AuditAction.STATEMENT_DOWNLOADED}) == 2
    # A customer's own download is not audited either.
    client_for(priya.user).get(f"/statement/download?{RANGE}&format=pdf")
    assert audits.count_documents({"action": AuditAction.STATEMENT_DOWNLOADED}) == 2
