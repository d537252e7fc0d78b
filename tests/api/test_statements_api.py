"""Balance as-of, statements and receipts over the JSON API, against the real embedded server.

As-of at the edges (before the first entry, between two, exactly on one, after the last, a
date alone, a naive IST time), owner-or-staff access with the same 404 for anyone else on every
new route and format, statements that parse back to the ledger, refused ranges, the staff
download audit, and receipts as the sender, the receiver and staff see them.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, timedelta

import pytest
from bson import ObjectId
from django.test import override_settings

from accounts.models import Role
from aegis.clock import BANK_TZ, bank_time, now_ms
from aegis.mongo import collection
from ledger.models import AuditAction, AuditLog, LedgerEntry
from tests.accounts.conftest import ApiClient, api_as
from tests.factories import make_account, make_user
from transfers import exceptions as exc
from transfers.services import system_fund, transfer_create

pytestmark = pytest.mark.usefixtures("generous_limits")


@pytest.fixture
def generous_limits():
    with override_settings(AEGIS_RATELIMIT_GLOBAL="100000/15m", AEGIS_RATELIMIT_STRICT="100000/15m"):
        yield


def transfer(sender, receiver, paise: int, key: str) -> dict:
    try:
        return transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(receiver.pk),
            amount_paise=paise,
            idempotency_key=key,
            note=f"note {key}",
        ).transaction
    except exc.TransferFailed as failure:
        return failure.transaction


def entries(account) -> list[dict]:
    return list(collection(LedgerEntry).find({"account_id": account.pk}).sort("seq", 1))


def z(moment) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def today_ist() -> str:
    return bank_time(now_ms()).date().isoformat()


@pytest.fixture
def history(bank, fund):
    """Asha's account with three entries at distinct instants: +₹5,000 funding, -₹1,000, +₹250."""
    asha = make_account(user=make_user(name="Asha Rao"))
    priya = make_account(user=make_user(name="Priya Sharma"))
    fund(asha, 500_000)
    fund(priya, 100_000)
    time.sleep(0.01)
    transfer(asha, priya, 100_000, "a-to-p")
    time.sleep(0.01)
    transfer(priya, asha, 25_000, "p-to-a")
    asha.refresh_from_db()
    priya.refresh_from_db()
    return asha, priya


def as_of(client, account, value: str):
    return client.get(f"/api/accounts/balance/{account.pk}", {"asOf": value})


def assert_refused(response, status: int, field: str | None = None, code: str | None = None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False and body["message"] and body["code"]
    if field:
        assert body["field"] == field
    if code:
        assert body["code"] == code


# --- balance as-of --------------------------------------------------------------------------------


def test_without_as_of_the_answer_is_exactly_todays(history):
    asha, _ = history
    response = api_as(asha.user).get(f"/api/accounts/balance/{asha.pk}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "accountId": str(asha.pk), "balance": 4250, "currency": "INR"}


def test_as_of_before_between_on_and_after_the_entries(history):
    asha, _ = history
    first, second, third = entries(asha)
    assert first["created_at"] < second["created_at"] < third["created_at"]
    client = api_as(asha.user)
    one_ms = timedelta(milliseconds=1)
    cases = [
        (first["created_at"] - one_ms, 0, 0),  # before the first entry
        (first["created_at"], 1, 500_000),  # exactly on an entry: at-or-before includes it
        (second["created_at"] - one_ms, 1, 500_000),  # between two entries
        (second["created_at"], 2, 400_000),
        (third["created_at"], 3, 425_000),
        (third["created_at"] + timedelta(days=1), 3, 425_000),  # after the last
    ]
    for instant, seq, paise in cases:
        response = as_of(client, asha, z(instant))
        assert response.status_code == 200, response.content
        assert response.json() == {
            "success": True,
            "accountId": str(asha.pk),
            "balance": paise / 100,
            "currency": "INR",
            "asOf": z(instant),
            "seq": seq,
        }, instant


def test_as_of_a_naive_time_is_ist_and_an_offset_is_exact(history):
    asha, _ = history
    second = entries(asha)[1]["created_at"]
    client = api_as(asha.user)
    naive = second.astimezone(BANK_TZ).replace(tzinfo=None).isoformat(timespec="milliseconds")
    offset = second.astimezone(BANK_TZ).isoformat(timespec="milliseconds")  # +05:30, sent URL-encoded
    for text in (naive, offset):
        body = as_of(client, asha, text).json()
        assert (body["seq"], body["balance"], body["asOf"]) == (2, 4000, z(second)), text
    before = as_of(
        client, asha, (second - timedelta(milliseconds=1)).astimezone(BANK_TZ).replace(tzinfo=None).isoformat()
    )
    assert before.json()["seq"] == 1


def test_as_of_a_date_alone_is_the_end_of_that_ist_day(history):
    asha, _ = history
    client = api_as(asha.user)
    today = bank_time(now_ms()).date()
    body = as_of(client, asha, today.isoformat()).json()
    end_of_today = z(bank_time(now_ms()).replace(hour=23, minute=59, second=59, microsecond=999_000))
    assert (body["seq"], body["balance"], body["asOf"]) == (3, 4250, end_of_today)
    yesterday = as_of(client, asha, (today - timedelta(days=1)).isoformat()).json()
    assert (yesterday["seq"], yesterday["balance"]) == (0, 0)


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2026-13-01", "2026-12-01T25:00", "2026-12-01T10:00:00+0530x", "1999-12-31", "2026-W48-2", "１２"],
)
def test_a_malformed_as_of_is_400_naming_the_field(history, value):
    asha, _ = history
    assert_refused(as_of(api_as(asha.user), asha, value), 400, field="asOf", code="validation_error")


def test_staff_read_any_accounts_as_of_and_a_customer_gets_404(history):
    asha, priya = history
    staff = make_user(role=Role.ADMIN, name="Staff Member")
    instant = z(entries(asha)[1]["created_at"])
    body = as_of(api_as(staff), asha, instant).json()
    assert (body["accountId"], body["seq"], body["balance"]) == (str(asha.pk), 2, 4000)
    assert api_as(staff).get(f"/api/accounts/balance/{asha.pk}").json()["balance"] == 4250
    # Another customer: the same 404 as an unknown account, whatever the query (checked after the lookup).
    for value in (instant, "not a time"):
        response = as_of(api_as(priya.user), asha, value)
        assert_refused(response, 404, code="not_found")
        assert response.json()["message"] == "Account not found."
    unknown = api_as(staff).get(f"/api/accounts/balance/{ObjectId()}", {"asOf": instant})
    assert_refused(unknown, 404, code="not_found")


# --- statements -----------------------------------------------------------------------------------


def statement(client, account, **query):
    return client.get(f"/api/accounts/{account.pk}/statement", query)


def test_statement_csv_parses_back_to_the_ledger(history):
    asha, _ = history
    today = today_ist()
    response = statement(api_as(asha.user), asha, **{"from": today, "to": today})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = csv_rows(text)
    ledger = entries(asha)
    assert len(rows) == len(ledger) == 3
    for row, entry in zip(rows, ledger, strict=True):
        assert row["transaction"] == str(entry["transaction_id"])
        assert row["direction"] == ("OUT" if entry["type"] == "DEBIT" else "IN")
        assert row["amount"] == f"{entry['amount'] / 100:.2f}"
        assert row["balance"] == f"{entry['balance_after'] / 100:.2f}"


def csv_rows(text: str) -> list[dict]:
    """The entry rows of a statement CSV, keyed by a short name for each column the ledger decides."""
    reader = csv.reader(io.StringIO(text))
    table = [row for row in reader if row]
    header_at = next(i for i, row in enumerate(table) if any("balance" in cell.lower() for cell in row))
    header = [cell.lower() for cell in table[header_at]]

    def col(*words):
        return next(i for i, name in enumerate(header) if all(w in name for w in words))

    columns = {
        "transaction": col("transaction"),
        "direction": col("direction"),
        "amount": col("amount"),
        "balance": col("balance"),
    }
    body = [row for row in table[header_at + 1 :] if len(row) == len(header)]
    return [{key: row[i] for key, i in columns.items()} for row in body]


def test_statement_pdf_is_a_pdf_attachment(history):
    asha, _ = history
    today = today_ist()
    response = statement(api_as(asha.user), asha, **{"from": today, "to": today, "format": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),  # to before from
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 days
        ({"from": "2026-11-31", "to": "2026-12-01"}, "from"),  # no such day
        ({"from": "01/11/2026", "to": "2026-12-01"}, "from"),
        ({"from": "2026-11-01", "to": "tomorrow"}, "to"),
        ({"to": "2026-11-01"}, "from"),
        ({"from": "2026-11-01"}, "to"),
        ({"from": "2026-11-01", "to": "2026-11-30", "format": "xls"}, "format"),
    ],
)
def test_a_bad_range_or_format_is_400_naming_the_field(history, query, field):
    asha, _ = history
    assert_refused(statement(api_as(asha.user), asha, **query), 400, field=field)


def test_a_full_year_is_accepted(history):
    asha, _ = history
    response = statement(api_as(asha.user), asha, **{"from": "2025-01-01", "to": "2026-01-01"})  # 366 days
    assert response.status_code == 200, response.content


def test_a_staff_download_is_audited_naming_both_and_a_customers_own_is_not(history):
    asha, _ = history
    staff = make_user(role=Role.ADMIN, name="Staff Member")
    today = today_ist()

    def downloads():
        return list(collection(AuditLog).find({"action": AuditAction.STATEMENT_DOWNLOADED}))

    own = statement(api_as(asha.user), asha, **{"from": today, "to": today})
    assert own.status_code == 200
    b"".join(own.streaming_content)
    assert downloads() == []

    response = statement(api_as(staff), asha, **{"from": today, "to": today, "format": "pdf"})
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    (entry,) = downloads()
    assert (entry["actor_id"], entry["user_id"], entry["status"]) == (str(staff.pk), str(asha.user.pk), "SUCCESS")
    assert entry["details"]["format"] == "pdf" and entry["details"]["from"] == today

    # A refused request downloads nothing and is not recorded.
    assert_refused(statement(api_as(staff), asha, **{"from": today, "to": "bad"}), 400, field="to")
    assert len(downloads()) == 1


# --- receipts -------------------------------------------------------------------------------------


def receipt(client, txn_id, **query):
    return client.get(f"/api/transactions/{txn_id}/receipt", query)


@pytest.fixture
def retried(bank, fund):
    """Asha's ₹9,000 to Priya: refused for insufficient funds, then (after a top-up) retried and completed."""
    asha = make_account(user=make_user(name="Asha Rao"))
    priya = make_account(user=make_user(name="Priya Sharma"))
    fund(asha, 500_000)
    failed = transfer(asha, priya, 900_000, "big-1")
    assert failed["status"] == "FAILED"
    system_fund(actor=bank.system_user, to_account_id=str(asha.pk), amount_paise=500_000, idempotency_key="top-up")
    done = transfer(asha, priya, 900_000, "big-1")
    assert done["status"] == "COMPLETED" and done["retry_count"] == 1
    return asha, priya, str(done["_id"])


def test_the_senders_receipt_shows_every_attempt(retried):
    asha, priya, txn_id = retried
    response = receipt(api_as(asha.user), txn_id)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    got = body["receipt"]
    assert got["id"] == txn_id and got["status"] == "COMPLETED" and got["kind"] == "TRANSFER"
    assert (got["amount"], got["currency"], got["retryCount"], got["viewerSide"]) == (9000, "INR", 1, "OUT")
    assert got["balanceAfter"] == 1000  # ₹5,000 + ₹5,000 - ₹9,000
    assert got["from"] == {"account": str(asha.pk), "name": "Asha Rao"}
    assert got["to"] == {"account": str(priya.pk), "name": "Priya S."}  # another customer: masked
    assert [a["status"] for a in got["attempts"]] == ["FAILURE", "SUCCESS"]
    assert got["createdAt"].endswith("+00:00") and got["completedAt"]
    assert set(got) == {
        "id", "kind", "status", "amount", "currency", "note", "createdAt", "completedAt", "failureReason",
        "retryCount", "from", "to", "attempts", "viewerSide", "balanceAfter", "reverses", "reversedBy",
        "reversedAmount",
    }  # fmt: skip
    assert (got["reverses"], got["reversedBy"], got["reversedAmount"]) == (None, [], 0)


def test_the_receivers_receipt_hides_the_senders_failures(retried):
    asha, priya, txn_id = retried
    got = receipt(api_as(priya.user), txn_id).json()["receipt"]
    assert (got["viewerSide"], got["balanceAfter"], got["amount"]) == ("IN", 9000, 9000)
    assert (got["attempts"], got["failureReason"], got["retryCount"]) == ([], None, 0)
    assert got["from"] == {"account": str(asha.pk), "name": "Asha R."}


def test_a_failed_transfer_the_receiver_never_saw_is_404_to_them(bank, fund):
    asha = make_account(user=make_user(name="Asha Rao"))
    priya = make_account(user=make_user(name="Priya Sharma"))
    fund(asha, 100_000)
    failed = transfer(asha, priya, 900_000, "too-big")
    assert failed["status"] == "FAILED"
    txn_id = str(failed["_id"])
    sender = receipt(api_as(asha.user), txn_id).json()["receipt"]
    assert sender["status"] == "FAILED" and sender["failureReason"] and sender["balanceAfter"] is None
    for fmt in ("json", "pdf"):
        assert_refused(receipt(api_as(priya.user), txn_id, format=fmt), 404, code="not_found")


def test_staff_see_any_receipt_with_full_names(retried):
    asha, priya, txn_id = retried
    got = receipt(api_as(make_user(role=Role.ADMIN)), txn_id).json()["receipt"]
    assert got["viewerSide"] is None and got["balanceAfter"] is None
    assert got["to"]["name"] == "Priya Sharma" and len(got["attempts"]) == 2


def test_a_funding_receipt_names_aegis_funding(retried):
    asha, _, _ = retried
    funding = next(e for e in entries(asha) if e["type"] == "CREDIT")
    got = receipt(api_as(asha.user), str(funding["transaction_id"])).json()["receipt"]
    assert (got["kind"], got["viewerSide"], got["from"]["name"]) == ("SYSTEM_FUNDING", "IN", "Aegis funding")


def test_receipt_pdf(retried):
    asha, _, txn_id = retried
    response = receipt(api_as(asha.user), txn_id, format="pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert_refused(receipt(api_as(asha.user), txn_id, format="xml"), 400, field="format")


# --- access on every new route ----------------------------------------------------------------------


def test_another_customers_account_or_transaction_is_404_on_every_route_and_format(retried):
    asha, _, txn_id = retried
    mallory = make_account(user=make_user(name="Mallory"))
    client = api_as(mallory.user)
    today = today_ist()
    answers = [
        as_of(client, asha, "2026-12-01"),
        statement(client, asha, **{"from": today, "to": today}),
        statement(client, asha, **{"from": today, "to": today, "format": "pdf"}),
        statement(client, asha, **{"from": "bad", "format": "bad"}),  # ownership is checked first
        receipt(client, txn_id),
        receipt(client, txn_id, format="pdf"),
        receipt(client, str(ObjectId())),
        receipt(client, "not-an-id"),
    ]
    for response in answers:
        assert_refused(response, 404, code="not_found")
    assert collection(AuditLog).count_documents({"action": AuditAction.STATEMENT_DOWNLOADED}) == 0


def test_unauthenticated_is_401_json_on_every_route(retried):
    asha, _, txn_id = retried
    anonymous = ApiClient()
    today = today_ist()
    for response in (
        as_of(anonymous, asha, "2026-12-01"),
        statement(anonymous, asha, **{"from": today, "to": today}),
        receipt(anonymous, txn_id),
        receipt(anonymous, txn_id, format="pdf"),
    ):
        assert_refused(response, 401)


def test_the_openapi_document_describes_the_new_routes(client):
    document = client.get("/api/openapi.json").json()
    balance = document["paths"]["/api/accounts/balance/{account_id}"]["get"]
    (as_of_param,) = [p for p in balance["parameters"] if p["name"] == "asOf"]
    assert "IST" in as_of_param["schema"]["description"] and "date alone" in as_of_param["schema"]["description"]
    statement_op = document["paths"]["/api/accounts/{account_id}/statement"]["get"]
    assert set(statement_op["responses"]["200"]["content"]) == {"text/csv", "application/pdf"}
    assert {"400", "401", "404"} <= set(statement_op["responses"])
    assert {p["name"] for p in statement_op["parameters"]} >= {"from", "to", "format"}
    receipt_op = document["paths"]["/api/transactions/{transaction_id}/receipt"]["get"]
    assert set(receipt_op["responses"]["200"]["content"]) == {"application/json", "application/pdf"}
    assert {"400", "401", "404"} <= set(receipt_op["responses"])
