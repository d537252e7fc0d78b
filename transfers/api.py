"""JSON API for transfers (DESIGN §5): the idempotent transfer, system funding, and history.

Thin views: the payload's shape is checked by its schema (`aegis.api` types, the amount by
`aegis.money.parse_amount`), then one service or selector runs and `transfers.serializers`
shapes the answer. The services own every business rule (ownership first, idempotency,
limits, retries).
"""

from __future__ import annotations

import re

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from accounts.policy import SYSTEM, USER, operation
from accounts.selectors import account_get_owned
from aegis.api import AccountPath, Cursor, Error, Ok, Page, account_id, amount, errors, ok, text, whole_number
from aegis.http import error_response
from ledger.selectors import MAX_PAGE, MAX_PAGE_SIZE, entries_for_account
from transfers.exceptions import RetriesExhausted, TransferFailed
from transfers.observability import observe_transfer
from transfers.serializers import HistoryEntry, Transaction, ledger_entry_json, transaction_json
from transfers.services import MAX_KEY_LENGTH, MAX_NOTE_LENGTH, TransferResult, system_fund, transfer_create

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
router = Router()


Amount = amount(
    "Rupees as a JSON number or a string, more than 0 and at most 10,000, with at most 2 "
    "decimals (more decimals, NaN, Infinity and non-numbers are refused, never rounded)."
)


class Funding(Schema):
    toAccount: account_id()
    amount: Amount
    idempotencyKey: text(MAX_KEY_LENGTH) = Field(
        description="Chosen by the client per transfer intent (e.g. a UUID); printable. Retry with the same key."
    )
    note: text(MAX_NOTE_LENGTH, required=False) = ""


class TransferIn(Funding):
    fromAccount: account_id() = Field(description="Your own account.")


class TransferAnswer(Ok):
    message: str
    replayed: bool = Field(description="true when this answers a replay of a completed key: nothing moved")
    transaction: Transaction


class TransferError(Error):
    """A transfer recorded as FAILED (or out of retries): `transaction` is that record."""

    transaction: Transaction | None = None


class HistoryQuery(Schema):
    page: whole_number(1, MAX_PAGE) = 1
    limit: whole_number(20, 1000) = Field(20, description="Page size; values above 50 are served as 50.")
    cursor: Cursor = None


class History(Page):
    accountId: str
    total: int = Field(description="The account's ledger entries (its ledger sequence: exact by construction).")
    transactions: list[HistoryEntry]


TRANSFER_ANSWERS = {(200, 201): TransferAnswer, **errors(400, 401, 404, 409, 503), 422: TransferError}


def _request_id(request: HttpRequest) -> str:
    # Set by aegis.observability.RequestLogMiddleware (the client's sane X-Request-ID, or a new id).
    value = getattr(request, "request_id", "")
    return value if REQUEST_ID.match(value) else ""


def _run(service, request: HttpRequest, payload: Funding, **kwargs):
    """Call a transfer service and answer in the seed's shape: 201 new, 200 replay, errors with the record."""
    fields = {
        "to_account_id": payload.toAccount,
        "amount_paise": payload.amount,
        "idempotency_key": payload.idempotencyKey,
        "note": payload.note,
    }
    try:
        result: TransferResult = observe_transfer(
            service.__name__,
            lambda: service(actor=request.user, request_id=_request_id(request), **fields, **kwargs),
        )
    except (TransferFailed, RetriesExhausted) as err:
        # The FAILED record tells the client its retryCount and failureReason.
        return error_response(err, extra={"transaction": transaction_json(err.transaction)})
    body = ok(
        message="Transaction processed", replayed=result.replayed, transaction=transaction_json(result.transaction)
    )
    return Status(200 if result.replayed else 201, body)


@operation(
    router, "POST", "/transactions", USER, strict="transfer", url_name="transactions", response=TRANSFER_ANSWERS,
    summary="Transfer money, exactly once per idempotency key",
    description="201: a new transfer completed; 200: a replay of a completed key (nothing moved). A business "
    "refusal (422) records the transfer FAILED (retryCount + 1); send the same request with the same key to "
    "retry, up to 3 times. The same key with another recipient or amount is 422; 409: in flight; 404: "
    "fromAccount is not yours; 503: not confirmed, retry with the same key.",
)  # fmt: skip
def transaction_create(request: HttpRequest, payload: TransferIn):
    return _run(transfer_create, request, payload, from_account_id=payload.fromAccount)


@operation(
    router, "POST", "/transactions/system/initial-funds", SYSTEM, strict="transfer",
    url_name="system-initial-funds", response={**TRANSFER_ANSWERS, **errors(403)},
    summary="Fund an account from the system account (system user only)",
)  # fmt: skip
def system_initial_funds(request: HttpRequest, payload: Funding):
    return _run(system_fund, request, payload)


@operation(
    router, "GET", "/transactions/{str:account_id}", USER, url_name="transaction-history",
    response={200: History, **errors(400, 401, 404)},
    summary="History of one of your accounts, from the ledger, newest first",
    description="`cursor` (a `nextCursor`) continues exactly below the page before, with no entry skipped or "
    "repeated while transfers commit; it wins over `page`. A tampered cursor or one from another account "
    "is 400 `invalid_cursor`.",
)  # fmt: skip
def transaction_history(request: HttpRequest, account_id: AccountPath, query: Query[HistoryQuery]):
    account = account_get_owned(user=request.user, account_id=account_id)
    limit = min(query.limit, MAX_PAGE_SIZE)
    result = entries_for_account(account=account, page=query.page, limit=limit, cursor=query.cursor)
    return ok(
        accountId=str(account.pk),
        **{key: result[key] for key in ("page", "limit", "total", "hasNextPage", "nextCursor")},
        transactions=[ledger_entry_json(row) for row in result["rows"]],
    )
