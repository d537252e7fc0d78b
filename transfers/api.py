"""JSON API for transfers (DESIGN §5): the idempotent transfer, system funding, and history.

Thin views: validate the payload's shape (`aegis.api_input`, `transfers.money.parse_amount`),
call one service or selector, serialize with `transfers.serializers`. The services own every
business rule (ownership first, idempotency, limits, retries).
"""

from __future__ import annotations

import re

from django.http import HttpRequest

from accounts.selectors import account_get_owned
from aegis.api_input import account_id_field, optional_string, page_params, query_cursor, required_string
from aegis.errors import ValidationFailed
from aegis.http import api_view, error_response, json_success
from aegis.observability import observe_transfer
from aegis.policy import SYSTEM, USER, policy
from ledger.selectors import entries_for_account
from transfers.exceptions import RetriesExhausted, TransferFailed
from transfers.money import parse_amount
from transfers.serializers import ledger_entry_json, transaction_json
from transfers.services import MAX_KEY_LENGTH, MAX_NOTE_LENGTH, TransferResult, system_fund, transfer_create

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _amount(data: dict) -> int:
    value = data.get("amount")
    if value is None:
        raise ValidationFailed("amount is required.", field="amount")
    return parse_amount(value)


def _request_id(request: HttpRequest) -> str:
    # Set by aegis.observability.RequestLogMiddleware (the client's sane X-Request-ID, or a new id).
    value = getattr(request, "request_id", "")
    return value if REQUEST_ID.match(value) else ""


def _transfer_fields(data: dict) -> dict:
    return {
        "to_account_id": account_id_field(data, "toAccount"),
        "amount_paise": _amount(data),
        "idempotency_key": required_string(data, "idempotencyKey", max_length=MAX_KEY_LENGTH),
        "note": optional_string(data, "note", max_length=MAX_NOTE_LENGTH),
    }


def _run(service, **kwargs):
    """Call a transfer service and answer in the seed's shape: 201 new, 200 replay, errors with the record."""
    try:
        result: TransferResult = observe_transfer(service.__name__, lambda: service(**kwargs))
    except (TransferFailed, RetriesExhausted) as err:
        # The FAILED record tells the client its retryCount and failureReason.
        return error_response(err, extra={"transaction": transaction_json(err.transaction)})
    return json_success(
        {
            "message": "Transaction processed",
            "replayed": result.replayed,
            "transaction": transaction_json(result.transaction),
        },
        status=200 if result.replayed else 201,
    )


@policy(USER, methods=["POST"], strict="transfer")
@api_view
def transaction_create(request: HttpRequest):
    data = request.json
    from_account_id = account_id_field(data, "fromAccount")
    fields = _transfer_fields(data)
    return _run(
        transfer_create,
        actor=request.user,
        from_account_id=from_account_id,
        request_id=_request_id(request),
        **fields,
    )


@policy(SYSTEM, methods=["POST"], strict="transfer")
@api_view
def system_initial_funds(request: HttpRequest):
    fields = _transfer_fields(request.json)
    return _run(system_fund, actor=request.user, request_id=_request_id(request), **fields)


@policy(USER, methods=["GET"])
@api_view
def transaction_history(request: HttpRequest, account_id: str):
    account = account_get_owned(user=request.user, account_id=account_id)
    page, limit = page_params(request)
    # `cursor` wins over `page` (both may come from a client that keeps page=1 in its base URL);
    # a tampered or foreign cursor is a 400 `invalid_cursor`.
    result = entries_for_account(account=account, page=page, limit=limit, cursor=query_cursor(request))
    return json_success(
        {
            "accountId": str(account.pk),
            "page": result["page"],
            "limit": result["limit"],
            "total": result["total"],
            "hasNextPage": result["hasNextPage"],
            "nextCursor": result["nextCursor"],
            "transactions": [ledger_entry_json(row) for row in result["rows"]],
        }
    )
