"""JSON API for the staff console (DESIGN §5, /api/admin/*): users, transactions, stats.

Freeze/unfreeze live in `accounts.api`. Every route here is ADMIN with the "admin" strict limit.
Transactions are shown without the idempotency key or any claim internals.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from accounts.api import UserOut, user_json
from accounts.models import AccountStatus
from accounts.policy import ADMIN, operation
from adminpanel.selectors import users_page
from aegis.api import Cursor, DateTime, Ok, Page, Rupees, account_id, choice, errors, ok, whole_number
from aegis.ids import parse_object_id
from aegis.keyset import MAX_WALKED_PAGE
from aegis.money import rupees
from ledger.selectors import MAX_PAGE, MAX_PAGE_SIZE
from transfers.models import TransactionStatus
from transfers.selectors import transaction_stats, transactions_list
from transfers.serializers import AdminTransaction, transaction_admin_json

router = Router(tags=["admin"])


class StaffQuery(Schema):
    cursor: Cursor = None
    # Keyset lists: without a cursor, walked from the newest page; deeper than MAX_WALKED_PAGE is
    # 400 `page_too_deep` (follow nextCursor instead).
    page: whole_number(1, MAX_PAGE, documented_maximum=MAX_WALKED_PAGE) = 1
    limit: whole_number(20, 1000) = Field(20, description="Page size; values above 50 are served as 50.")


class TransactionQuery(StaffQuery):
    status: choice(TransactionStatus.values) = None
    accountId: account_id(required=False) = Field(None, description="Transfers from or to this account.")


class StaffPage(Page):
    total: None = Field(description="Not counted (no exact, cheap count exists): always null.")


class UserAccount(Schema):
    id: str = Field(alias="_id")
    status: AccountStatus
    currency: str
    balance: Rupees


class StaffUser(UserOut):
    createdAt: DateTime
    account: UserAccount | None


class StaffUserList(StaffPage):
    users: list[StaffUser]


class StaffTransactionList(StaffPage):
    transactions: list[AdminTransaction]


class Day(Schema):
    date: str = Field(json_schema_extra={"format": "date"})
    volume: Rupees
    completed: int
    failed: int


class Figures(Schema):
    users: int = Field(description="People (the system user not counted).")
    transactions: int
    byStatus: dict[TransactionStatus, int]
    completedVolume: Rupees = Field(description="Rupees moved by completed user transfers.")
    failures: int
    daily: list[Day] = Field(description="The last 30 days, oldest first.")


class Stats(Ok):
    stats: Figures


def _page(result: dict) -> dict:
    # Keyset pages: `total` is null (nothing counts these lists exactly and cheaply).
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


@operation(
    router, "GET", "/admin/users", ADMIN, strict="admin", url_name="admin-users",
    response={200: StaffUserList, **errors(400, 401, 403)}, summary="People, newest first, with their account status",
)  # fmt: skip
def admin_users(request: HttpRequest, query: Query[StaffQuery]):
    result = users_page(cursor=query.cursor, page=query.page, limit=min(query.limit, MAX_PAGE_SIZE))
    return ok(**_page(result), users=[_user_row_json(r) for r in result["rows"]])


@operation(
    router, "GET", "/admin/transactions", ADMIN, strict="admin", url_name="admin-transactions",
    response={200: StaffTransactionList, **errors(400, 401, 403)},
    summary="Transfers, newest first, filterable by status and account",
)  # fmt: skip
def admin_transactions(request: HttpRequest, query: Query[TransactionQuery]):
    result = transactions_list(
        status=query.status,
        account_id=parse_object_id(query.accountId),
        cursor=query.cursor,
        page=query.page,
        limit=min(query.limit, MAX_PAGE_SIZE),
    )
    return ok(**_page(result), transactions=[transaction_admin_json(t) for t in result["rows"]])


@operation(
    router, "GET", "/admin/stats", ADMIN, strict="admin", url_name="admin-stats",
    response={200: Stats, **errors(401, 403)}, summary="Users, transactions by status, completed volume, failures",
)  # fmt: skip
def admin_stats(request: HttpRequest):
    stats = transaction_stats()
    daily = [{**day, "volume": rupees(day["volume"])} for day in stats["daily"]]
    return ok(stats={**stats, "completedVolume": rupees(stats["completedVolume"]), "daily": daily})
