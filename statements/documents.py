"""What a customer downloads: the statement as CSV or PDF, and a transaction's one-page receipt.

Rendering only: the figures come from `statements.selectors` (a StatementSummary and its rows,
a receipt dict) and are written as they are, never recomputed. Two rules hold for every file:

- The arithmetic is checked while the rows are written: each entry's balance follows from the
  one before, and opening + money in - money out = closing. A break would mean the ledger chain
  is broken; the document is refused (RuntimeError) rather than handed over wrong.
- The CSV is for spreadsheets, where a cell starting with = + - @ (or a tab or CR) is run as a
  formula; a note is typed by the sender and lands in the receiver's file, so such text cells get
  a leading apostrophe. Figures are plain decimals ("1500.00"), never floats.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.http import HttpResponse, StreamingHttpResponse

from aegis.clock import bank_time, format_instant, now_ms
from aegis.errors import ValidationFailed
from aegis.money import decimal_rupees, format_inr
from aegis.pdf import BankDocument, Column
from statements.selectors import PDF_MAX_ENTRIES, StatementSummary, StatementTooLong

FORMATS = ("csv", "pdf")
CSV_HEADER = (
    "Date",
    "Entry",
    "Direction",
    "Counterparty account",
    "Counterparty",
    "Note",
    "Transaction ID",
    "Amount (INR)",
    "Balance after (INR)",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- the arithmetic both formats check -----------------------------------------------------------


class _Chain:
    """Follows the rows from the opening balance: each balance_after must be the one before plus
    (IN) or minus (OUT) the amount, and the last must be the closing balance."""

    def __init__(self, summary: StatementSummary):
        self.summary = summary
        self.balance = int(summary.opening.balance)
        self.money_in = 0
        self.money_out = 0
        self.count = 0

    def add(self, row: dict) -> None:
        amount = int(row["amount"])
        if row["direction"] == "IN":
            self.money_in += amount
            self.balance += amount
        elif row["direction"] == "OUT":
            self.money_out += amount
            self.balance -= amount
        else:
            raise RuntimeError(f"entry {row['seq']}: direction {row['direction']!r} is neither IN nor OUT")
        self.count += 1
        if int(row["balance_after"]) != self.balance:
            raise RuntimeError(
                f"account {self.summary.account.pk}: entry {row['seq']} says balance {row['balance_after']}, "
                f"the entries before it add up to {self.balance}; the ledger chain is broken (run reconcile)"
            )

    def close(self) -> None:
        opening, closing = int(self.summary.opening.balance), int(self.summary.closing.balance)
        if opening + self.money_in - self.money_out != closing or self.count != self.summary.entries:
            raise RuntimeError(
                f"account {self.summary.account.pk}: opening {opening} + in {self.money_in} - out {self.money_out} "
                f"over {self.count} entries is not closing {closing} over {self.summary.entries}; "
                "the statement is refused (run reconcile)"
            )


# --- CSV -----------------------------------------------------------------------------------------


class _Line:
    """A file-like target for csv.writer that hands back the line instead of keeping it."""

    def write(self, text: str) -> str:
        return text


def spreadsheet_safe(text) -> str:
    """Text a spreadsheet shows as text: a leading formula character gets an apostrophe."""
    text = "" if text is None else str(text)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def csv_time(moment) -> str:
    return bank_time(moment).strftime("%Y-%m-%d %H:%M:%S")


def statement_csv(summary: StatementSummary, rows: Iterable[dict]) -> Iterator[str]:
    """The header row, then one line per entry, each yielded as it is written (nothing accumulates).

    A broken chain raises RuntimeError mid-stream: the download fails rather than ends short of
    the truth, and the error is logged.
    """
    writer = csv.writer(_Line())
    chain = _Chain(summary)
    yield writer.writerow(CSV_HEADER)
    for row in rows:
        chain.add(row)
        yield writer.writerow(
            (
                csv_time(row["created_at"]),
                int(row["seq"]),
                row["direction"],
                spreadsheet_safe(row["counterparty_account"]),
                spreadsheet_safe(row["counterparty_name"]),
                spreadsheet_safe(row["note"]),
                spreadsheet_safe(row["transaction_id"]),
                decimal_rupees(row["amount"]),
                decimal_rupees(row["balance_after"]),
            )
        )
    chain.close()


# --- PDF -----------------------------------------------------------------------------------------

# 186 mm at 7 pt: the date and any 24-character transaction id fit whole (the widest hex digits
# need 39.7 mm), and so do balances into the crores; a longer figure is drawn smaller, never cut.
STATEMENT_COLUMNS = (
    Column("Date (IST)", 26),
    Column("Description", 44),
    Column("Reference", 40),
    Column("Debit", 24, figure=True),
    Column("Credit", 24, figure=True),
    Column("Balance", 28, figure=True),
)


def _table_time(moment) -> str:
    local = bank_time(moment)
    return f"{local.day} {local:%b %Y %H:%M}"


def _description(row: dict) -> str:
    name, note = row.get("counterparty_name") or "", " ".join(str(row.get("note") or "").split())
    return f"{name} · {note}" if name and note else name or note


def statement_pdf(summary: StatementSummary, rows: Iterable[dict]) -> bytes:
    """The statement as a person would recognise it; StatementTooLong (400) past PDF_MAX_ENTRIES,
    before anything is read or drawn."""
    if summary.entries > PDF_MAX_ENTRIES:
        raise StatementTooLong(entries=f"{summary.entries:,}", limit=f"{PDF_MAX_ENTRIES:,}")
    period = summary.period
    first, last = format_instant(period.first_day, "date"), format_instant(period.last_day, "date")
    doc = BankDocument(title="Account statement", generated_at=summary.generated_at)
    doc.heading("Account statement", size=15)
    doc.label_value("Account holder", summary.holder_name)
    doc.label_value("Email", summary.holder_email)
    doc.label_value("Account", f"{summary.account.pk} ({getattr(summary.account, 'currency', 'INR')})")
    doc.label_value("Period", f"{first} – {last} (IST)")
    doc.label_value("Opening balance", f"{format_inr(summary.opening.balance)}  (start of {first})", bold=True)
    doc.label_value("Closing balance", f"{format_inr(summary.closing.balance)}  (end of {last})", bold=True)
    doc.label_value("Entries", f"{summary.entries:,}")
    doc.ln(4)

    chain = _Chain(summary)
    doc.table_header(STATEMENT_COLUMNS)
    doc.table_row(("", "Opening balance", "", "", "", format_inr(summary.opening.balance)), bold=True)
    for row in rows:
        chain.add(row)
        amount = format_inr(row["amount"])
        outgoing = row["direction"] == "OUT"
        doc.table_row(
            (
                _table_time(row["created_at"]),
                _description(row),
                row["transaction_id"],
                amount if outgoing else "",
                "" if outgoing else amount,
                format_inr(row["balance_after"]),
            )
        )
    chain.close()
    if chain.count == 0:
        doc.table_row(("", "No transactions in this period.", "", "", "", ""))
    doc.rule()
    doc.table_row(("", "Totals", "", format_inr(chain.money_out), format_inr(chain.money_in), ""), bold=True)
    doc.table_row(("", "Closing balance", "", "", "", format_inr(summary.closing.balance)), bold=True)
    doc.end_table()

    if doc.will_page_break(36):  # the summary below stays on one page
        doc.add_page()
    doc.ln(5)
    doc.heading("Summary", size=11)
    doc.label_value("Opening balance", format_inr(summary.opening.balance))
    doc.label_value("Money in", f"{format_inr(chain.money_in)}  (credits)")
    doc.label_value("Money out", f"{format_inr(chain.money_out)}  (debits)")
    doc.label_value("Closing balance", format_inr(summary.closing.balance), bold=True)
    return doc.to_bytes()


ATTEMPTS_ON_RECEIPT = 20  # with the fields above them, what one A4 page holds


def receipt_pdf(receipt: dict) -> bytes:
    """One page: what happened to one transaction, as far as the viewer may see it."""
    doc = BankDocument(title="Transaction receipt", generated_at=now_ms())
    doc.heading("Transaction receipt", size=15)
    doc.label_value("Transaction ID", receipt["id"])
    doc.label_value("Status", receipt.get("status", ""), bold=True)
    doc.label_value("Type", str(receipt.get("kind", "")).replace("_", " ").capitalize())
    doc.label_value("Amount", f"{format_inr(receipt['amount'])} ({receipt.get('currency') or 'INR'})", bold=True)
    doc.label_value("Created", format_instant(receipt.get("created_at"), "seconds"))
    if receipt.get("completed_at"):
        doc.label_value("Completed", format_instant(receipt["completed_at"], "seconds"))
    for label, side in (("From", "from"), ("To", "to")):
        party = receipt.get(side) or {}
        account = party.get("account") or ""
        doc.label_value(label, f"{party.get('name', '')}  ({account})" if account else party.get("name", ""))
    if receipt.get("note"):
        doc.label_value("Note", " ".join(str(receipt["note"]).split()))
    if receipt.get("failure_reason"):
        doc.label_value("Failure reason", receipt["failure_reason"])
    if receipt.get("retry_count"):
        doc.label_value("Retries", str(receipt["retry_count"]))
    if receipt.get("balance_after") is not None:
        doc.label_value("Your balance after", format_inr(receipt["balance_after"]))
    if receipt.get("reverses"):
        doc.label_value("Returns money from", receipt["reverses"])
    if receipt.get("reversed_amount"):
        returned = format_inr(receipt["reversed_amount"])
        doc.label_value("Returned by reversal", f"{returned}  ({', '.join(receipt['reversed_by'])})")
    attempts = receipt.get("attempts") or []
    if attempts:
        doc.ln(4)
        doc.heading("Attempts", size=11)
        columns = (Column("Time (IST)", 50), Column("Outcome", 40), Column("Reason", 96))
        shown = attempts[:ATTEMPTS_ON_RECEIPT]
        doc.table_header(columns)
        for attempt in shown:
            doc.table_row(
                (format_instant(attempt.get("at"), "seconds"), attempt.get("status", ""), attempt.get("reason"))
            )
        if len(attempts) > len(shown):
            doc.table_row(("", f"and {len(attempts) - len(shown)} more", ""))
        doc.end_table()
    return doc.to_bytes()


# --- responses -----------------------------------------------------------------------------------


def statement_filename(summary: StatementSummary, ext: str) -> str:
    period = summary.period
    short = str(summary.account.pk)[-6:]
    return f"aegis-statement-{short}-{period.first_day.isoformat()}-to-{period.last_day.isoformat()}.{ext}"


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    # Only hex, digits and dashes reach the name, so it needs no quoting beyond the quotes.
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"  # a statement is personal: no shared or browser cache keeps it
    return response


def statement_response(summary: StatementSummary, rows: Iterable[dict], fmt: str) -> HttpResponse:
    """The statement as a download: CSV streamed as it is read, PDF rendered whole (StatementTooLong
    past PDF_MAX_ENTRIES); any other format is a 400 on the field `format`."""
    if fmt == "csv":
        response = StreamingHttpResponse(statement_csv(summary, rows), content_type="text/csv; charset=utf-8")
    elif fmt == "pdf":
        response = HttpResponse(statement_pdf(summary, rows), content_type="application/pdf")
    else:
        raise ValidationFailed(f"format must be one of: {', '.join(FORMATS)}.", field="format")
    return _attachment(response, statement_filename(summary, fmt))


def receipt_response(receipt: dict) -> HttpResponse:
    response = HttpResponse(receipt_pdf(receipt), content_type="application/pdf")
    return _attachment(response, f"aegis-receipt-{receipt['id']}.pdf")
