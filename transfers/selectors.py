"""Reads of transfers: lookups by key, the staff listing with filters, and statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from accounts.models import User
from aegis.mongo import collection
from ledger.selectors import page_bounds
from transfers.models import Transaction, TransactionStatus

# Never shown outside the engine: the claim internals. (Staff pages may show the key itself.)
_INTERNAL = {"fingerprint": 0, "attempt_id": 0}


def transaction_for_key(*, from_account_id: ObjectId, idempotency_key: str) -> dict | None:
    return collection(Transaction).find_one(
        {"from_account_id": from_account_id, "idempotency_key": idempotency_key}, _INTERNAL
    )


def transactions_list(
    *, status: str | None = None, account_id: ObjectId | None = None, page=1, limit=20
) -> dict:
    """Staff listing, newest first: filter by status and by account (as sender or receiver)."""
    page, limit = page_bounds(page, limit)
    query: dict = {}
    if status:
        query["status"] = status
    if account_id is not None:
        query["$or"] = [{"from_account_id": account_id}, {"to_account_id": account_id}]
    txns = collection(Transaction)
    total = txns.count_documents(query)
    cursor = txns.find(query, _INTERNAL).sort([("created_at", -1), ("_id", -1)])
    rows = list(cursor.skip((page - 1) * limit).limit(limit))
    return {"rows": rows, "page": page, "limit": limit, "total": total, "hasNextPage": page * limit < total}


def transaction_stats(*, days: int = 30, now: datetime | None = None) -> dict:
    """Totals for the staff console, and per-day completed volume / completed vs failed counts."""
    now = now or datetime.now(UTC)
    txns = collection(Transaction)
    by_status = {s: 0 for s in TransactionStatus.values}
    for row in txns.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]):
        by_status[row["_id"]] = row["n"]
    volume = next(
        txns.aggregate([
            {"$match": {"status": TransactionStatus.COMPLETED, "kind": "TRANSFER"}},
            {"$group": {"_id": None, "paise": {"$sum": "$amount"}}},
        ]),
        {"paise": 0},
    )["paise"]
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    daily = {
        (since + timedelta(days=i)).date().isoformat(): {"volume": 0, "completed": 0, "failed": 0}
        for i in range(days)
    }
    # Customer transfers only, as in completedVolume: funding from the system account is not volume.
    recent = txns.find({"created_at": {"$gte": since}, "kind": "TRANSFER"}, {"created_at": 1, "status": 1, "amount": 1})
    for row in recent:
        day = daily.get(row["created_at"].date().isoformat())
        if day is None:
            continue
        if row["status"] == TransactionStatus.COMPLETED:
            day["completed"] += 1
            day["volume"] += int(row["amount"])
        elif row["status"] == TransactionStatus.FAILED:
            day["failed"] += 1
    return {
        "users": collection(User).count_documents({"is_system": False}),
        "transactions": sum(by_status.values()),
        "byStatus": by_status,
        "completedVolume": int(volume),
        "failures": by_status[TransactionStatus.FAILED],
        "daily": [{"date": d, **v} for d, v in daily.items()],
    }
