"""Reads for the pages (customer history, staff users and transaction details) and the shapes
the templates show.

Templates cannot read Mongo's `_id`, so raw transaction documents are turned into plain dicts
by `transaction_row`. Money stays integer paise; the `inr` filter formats it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bson import ObjectId

from accounts.models import Account, User
from accounts.selectors import parse_object_id
from aegis.errors import NotFound
from aegis.mongo import collection
from ledger.selectors import page_bounds
from transfers.models import MAX_USER_RETRIES, Transaction, TransactionStatus

_INTERNAL = {"fingerprint": 0, "attempt_id": 0}


def transaction_row(doc: dict, *, viewer_account_id: ObjectId | None = None) -> dict:
    """A transaction document as the pages show it (no claim internals)."""
    retry_count = int(doc.get("retry_count", 0))
    status = doc.get("status", "")
    row = {
        "id": str(doc["_id"]),
        "from_account": str(doc.get("from_account_id", "")),
        "to_account": str(doc.get("to_account_id", "")),
        "amount": int(doc.get("amount", 0)),
        "currency": doc.get("currency", "INR"),
        "note": doc.get("note", ""),
        "kind": doc.get("kind", ""),
        "status": status,
        "retry_count": retry_count,
        "max_retries": MAX_USER_RETRIES,
        "failure_reason": doc.get("failure_reason", ""),
        # Staff only (templates for customers never show these): the real reason behind a
        # refusal the sender saw as "cannot receive payments", and who asked for a funding.
        "failure_detail": doc.get("failure_detail", ""),
        "requested_by": doc.get("requested_by", ""),
        "idempotency_key": doc.get("idempotency_key", ""),
        "created_at": doc.get("created_at"),
        "updated_at": doc.get("updated_at"),
        "completed_at": doc.get("completed_at"),
        "can_retry": status == TransactionStatus.FAILED and retry_count < MAX_USER_RETRIES,
        "retries_exhausted": status == TransactionStatus.FAILED and retry_count >= MAX_USER_RETRIES,
    }
    if viewer_account_id is not None:
        row["direction"] = "OUT" if doc.get("from_account_id") == viewer_account_id else "IN"
    return row


def account_transactions(*, account_id: ObjectId, page=1, limit=15) -> dict:
    """A customer's full history, newest first: every transfer they sent (any status) and every
    transfer they received that completed (someone else's failed attempt is not theirs to see)."""
    page, limit = page_bounds(page, limit, default_limit=15)
    query = {
        "$or": [
            {"from_account_id": account_id},
            {"to_account_id": account_id, "status": TransactionStatus.COMPLETED},
        ]
    }
    txns = collection(Transaction)
    total = txns.count_documents(query)
    docs = txns.find(query, _INTERNAL).sort([("created_at", -1), ("_id", -1)]).skip((page - 1) * limit).limit(limit)
    rows = [transaction_row(d, viewer_account_id=account_id) for d in docs]
    return {"rows": rows, "page": page, "limit": limit, "total": total, "hasNextPage": page * limit < total}


def parked_event_row(doc: dict) -> dict:
    """A parked outbox event as the staff Events page shows it."""
    return {
        "id": str(doc["_id"]),
        "type": doc.get("event_type", ""),
        "account": doc.get("aggregate_id", ""),
        "attempts": int(doc.get("attempts", 0)),
        "last_error": doc.get("last_error", ""),
        "parked_at": doc.get("parked_at"),
        "created_at": doc.get("created_at"),
    }


def transaction_get(*, transaction_id) -> dict:
    """Any transaction by id (staff use); NotFound for a malformed or unknown id."""
    oid = parse_object_id(transaction_id)
    doc = collection(Transaction).find_one({"_id": oid}, _INTERNAL) if oid else None
    if doc is None:
        raise NotFound(thing="Transaction")
    return transaction_row(doc)


@dataclass
class UserRow:
    user: User
    account: Account | None


def users_page(*, query: str = "", page=1, limit=20) -> dict:
    """Staff listing of people (never the system user), newest first, searchable by email."""
    page, limit = page_bounds(page, limit)
    users = User.objects.filter(is_system=False)
    if query:
        users = users.filter(email__icontains=query.strip())
    total = users.count()
    chunk = list(users.order_by("-date_joined", "-id")[(page - 1) * limit : page * limit])
    accounts = {a.user_id: a for a in Account.objects.filter(user_id__in=[u.pk for u in chunk])}
    rows = [UserRow(user=u, account=accounts.get(u.pk)) for u in chunk]
    return {"rows": rows, "page": page, "limit": limit, "total": total, "hasNextPage": page * limit < total}


def user_row_for_account(*, account: Account) -> UserRow:
    return UserRow(user=account.user, account=account)


def system_user() -> User:
    user = User.objects.filter(is_system=True).first()
    if user is None:
        raise NotFound("The system user does not exist; run `manage.py bootstrap`.", thing="System user")
    return user


def system_account_id() -> ObjectId | None:
    account = Account.objects.filter(user__is_system=True).values_list("pk", flat=True).first()
    return account
