"""JSON API for the staff console (DESIGN §5, /api/admin/*): users, transactions, stats.

Freeze/unfreeze live in `accounts.api`. Every route here is ADMIN with the "admin" strict limit.
Transactions are shown without the idempotency key or any claim internals.
"""

from __future__ import annotations

from django.http import HttpRequest

from accounts.api import user_json
from adminpanel.selectors import users_page
from aegis.api_input import page_params, query_choice, query_cursor, query_object_id
from aegis.http import api_view, json_success, rupees
from aegis.policy import ADMIN, policy
from transfers.models import TransactionStatus
from transfers.selectors import transaction_stats, transactions_list
from transfers.serializers import transaction_admin_json


def _page_meta(result: dict) -> dict:
    # Keyset pages: `total` is null (nothing counts these lists exactly and cheaply); follow
    # `nextCursor` (null on the last page), or `page` up to keyset.MAX_WALKED_PAGE.
    return {k: result[k] for k in ("page", "limit", "total", "hasNextPage", "nextCursor")}


def _user_row_json(row) -> dict:
    account = row.account
    return {
        **user_json(row.user),
        "createdAt": row.user.date_joined.isoformat(),
        "account": None
        if account is None
        else {
            "_id": str(account.pk),
            "status": account.status,
            "currency": account.currency,
            "balance": rupees(account.balance),
        },
    }


@policy(ADMIN, methods=["GET"], strict="admin")
@api_view
def admin_users(request: HttpRequest):
    page, limit = page_params(request)
    result = users_page(cursor=query_cursor(request), page=page, limit=limit)
    return json_success({**_page_meta(result), "users": [_user_row_json(r) for r in result["rows"]]})


@policy(ADMIN, methods=["GET"], strict="admin")
@api_view
def admin_transactions(request: HttpRequest):
    status = query_choice(request, "status", TransactionStatus.values)
    account_id = query_object_id(request, "accountId")
    page, limit = page_params(request)
    cursor = query_cursor(request)
    result = transactions_list(status=status, account_id=account_id, cursor=cursor, page=page, limit=limit)
    return json_success({**_page_meta(result), "transactions": [transaction_admin_json(t) for t in result["rows"]]})


@policy(ADMIN, methods=["GET"], strict="admin")
@api_view
def admin_stats(request: HttpRequest):
    stats = transaction_stats()
    return json_success(
        {
            "stats": {
                "users": stats["users"],
                "transactions": stats["transactions"],
                "byStatus": stats["byStatus"],
                "completedVolume": rupees(stats["completedVolume"]),
                "failures": stats["failures"],
                "daily": [{**day, "volume": rupees(day["volume"])} for day in stats["daily"]],
            }
        }
    )
