"""JSON API for statements and receipts (DESIGN §5): a date range's statement as CSV or PDF, and
one transaction's receipt as JSON or PDF.

Thin views: the account (owner or staff) is found first, so another user's account or transfer
is the same 404 whatever the query says; then the range and format are checked
(`statements.selectors.statement_period`, 400 naming the field), the selectors read and
`statements.documents` renders. A staff member's download is audited before it is answered.
"""

from __future__ import annotations

from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from pydantic import WithJsonSchema

from accounts.policy import USER, operation
from accounts.selectors import account_get_readable
from aegis.api import ID_SCHEMA, AccountPath, DateTime, NullableDateTime, Ok, Rupees, errors, ok
from aegis.errors import ValidationFailed
from aegis.money import rupees
from statements.documents import receipt_response, statement_response
from statements.selectors import (
    MAX_STATEMENT_DAYS,
    PDF_MAX_ENTRIES,
    receipt_for,
    statement_period,
    statement_rows,
    statement_summary,
)
from statements.services import statement_download_record
from transfers.models import TransactionKind, TransactionStatus
from transfers.serializers import iso

router = Router()

STATEMENT_FORMATS = ("csv", "pdf")
RECEIPT_FORMATS = ("json", "pdf")


def _format_param(values: tuple[str, ...], default: str):
    # Checked in the view, after the lookup (a foreign id is 404 before any 400).
    schema = {"type": "string", "enum": list(values), "default": default}
    return Annotated[str | None, WithJsonSchema(schema)]


def _format(value: str | None, values: tuple[str, ...]) -> str:
    if value is None or value == "":
        return values[0]
    if value not in values:
        raise ValidationFailed(f"format must be one of {', '.join(values)}.", field="format")
    return value


Day = Annotated[
    str | None,
    WithJsonSchema({"type": "string", "format": "date", "description": "A day on the bank's clock (IST), YYYY-MM-DD."}),
]


class StatementQuery(Schema):
    from_: Day = Field(None, alias="from", description="Required: the statement's first day (IST), YYYY-MM-DD.")
    to: Day = Field(None, description="Required: its last day (IST), included; not before `from`, not after today.")
    format: _format_param(STATEMENT_FORMATS, "csv") = None


class ReceiptQuery(Schema):
    format: _format_param(RECEIPT_FORMATS, "json") = None


TransactionPath = Annotated[
    str, WithJsonSchema({**ID_SCHEMA, "description": "A transaction id; not yours to see (or none): 404."})
]


class Party(Schema):
    account: str = Field(description="The account id.")
    name: str = Field(description="As far as you may see it: the other customer's masked name; staff see it all.")


class Attempt(Schema):
    at: DateTime
    status: str
    reason: str | None = None


class Receipt(Schema):
    id: str
    kind: TransactionKind
    status: TransactionStatus
    amount: Rupees
    currency: str
    note: str
    createdAt: DateTime
    completedAt: NullableDateTime
    failureReason: str | None = Field(description="Why the last attempt failed (the sender and staff only).")
    retryCount: int = Field(ge=0)
    from_: Party = Field(alias="from")
    to: Party
    attempts: list[Attempt] = Field(description="Each attempt, oldest first (the sender and staff only).")
    viewerSide: Literal["OUT", "IN"] | None = Field(description="Your side of it; null for staff.")
    balanceAfter: Rupees | None = Field(description="Your balance after it (your ledger entry); null if none.")
    reverses: str | None = Field(description="A reversal: the transaction it returns money from.")
    reversedBy: list[str] = Field(description="The reversals that returned money from this one, oldest first.")
    reversedAmount: Rupees = Field(description="How much of it has been returned by reversals.")


class ReceiptAnswer(Ok):
    receipt: Receipt


def receipt_json(receipt: dict) -> dict:
    """A receipt (statements.selectors.receipt_for) in the API's words: camelCase, rupees, ISO instants."""
    balance_after = receipt["balance_after"]
    return {
        "id": str(receipt["id"]),
        "kind": receipt["kind"],
        "status": receipt["status"],
        "amount": rupees(receipt["amount"]),
        "currency": receipt["currency"],
        "note": receipt["note"] or "",
        "createdAt": iso(receipt["created_at"]),
        "completedAt": iso(receipt["completed_at"]),
        "failureReason": receipt["failure_reason"] or None,
        "retryCount": receipt["retry_count"],
        "from": {"account": str(receipt["from"]["account"]), "name": receipt["from"]["name"]},
        "to": {"account": str(receipt["to"]["account"]), "name": receipt["to"]["name"]},
        "attempts": [
            {"at": iso(a["at"]), "status": a["status"], "reason": a.get("reason") or None} for a in receipt["attempts"]
        ],
        "viewerSide": receipt["viewer_side"],
        "balanceAfter": None if balance_after is None else rupees(balance_after),
        "reverses": receipt["reverses"] or None,
        "reversedBy": receipt["reversed_by"],
        "reversedAmount": rupees(receipt["reversed_amount"]),
    }


STATEMENT_FILES = {
    "responses": {
        200: {
            "description": "The statement as a file (`Content-Disposition: attachment`): CSV (streamed, one row "
            "per ledger entry) or PDF.",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }
}
RECEIPT_FILES = {
    "responses": {
        200: {
            "description": "The receipt: JSON, or with `format=pdf` a one-page PDF (as an attachment).",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


@operation(
    router, "GET", "/accounts/{str:account_id}/statement", USER, url_name="account-statement",
    response=errors(400, 401, 404), openapi_extra=STATEMENT_FILES,
    summary="Statement of one of your accounts for a date range, as CSV or PDF (staff: any account)",
    description=f"Every ledger entry from `from` to `to` (IST days, both included; at most {MAX_STATEMENT_DAYS} "
    "days, ending no later than today), with the opening balance (as of the start), totals in and out and the "
    f"closing balance. 400 names the field at fault (`from`, `to`, `format`); a PDF of more than "
    f"{PDF_MAX_ENTRIES:,} entries is 400 `statement_too_long` (use CSV or a shorter period). Another user's "
    "account is 404. A staff member's download is recorded in the audit log.",
)  # fmt: skip
def account_statement(request: HttpRequest, account_id: AccountPath, query: Query[StatementQuery]):
    account = account_get_readable(user=request.user, account_id=account_id)
    period = statement_period(query.from_, query.to)
    fmt = _format(query.format, STATEMENT_FORMATS)
    staff = request.user.is_admin
    summary = statement_summary(account=account, period=period)
    # Rendered first, so a refused PDF (statement_too_long) is not recorded as a download.
    response = statement_response(summary, statement_rows(summary, full_names=staff), fmt)
    if staff:
        statement_download_record(
            staff=request.user, account=account, period=period, fmt=fmt, request_id=getattr(request, "request_id", "")
        )
    return response


@operation(
    router, "GET", "/transactions/{str:transaction_id}/receipt", USER, url_name="transaction-receipt",
    response={200: ReceiptAnswer, **errors(400, 401, 404)}, openapi_extra=RECEIPT_FILES,
    summary="Receipt of a transaction you sent or received (staff: any), as JSON or a PDF",
    description="The sender sees every attempt and the failure reason; the receiver sees only a COMPLETED "
    "transfer (anything else is 404, as is anyone else's transaction).",
)  # fmt: skip
def transaction_receipt(request: HttpRequest, transaction_id: TransactionPath, query: Query[ReceiptQuery]):
    receipt = receipt_for(viewer=request.user, transaction_id=transaction_id)
    if _format(query.format, RECEIPT_FORMATS) == "pdf":
        return receipt_response(receipt)
    return ok(receipt=receipt_json(receipt))
