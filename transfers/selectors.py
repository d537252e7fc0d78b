"""Reads of transfers: lookups by key, the staff listing with filters, and statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from accounts.models import User
from aegis.clock import BANK_TIME_ZONE, bank_day_start
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
    # Days are IST days (the clock every page shows): the window starts at an IST midnight.
    since = bank_day_start(now) - timedelta(days=days - 1)
    daily = {
        (since + timedelta(days=i)).date().isoformat(): {"volume": 0, "completed": 0, "failed": 0}
        for i in range(days)
    }
    completed = {"$eq": ["$status", TransactionStatus.COMPLETED]}
    # Customer transfers only, as in completedVolume: funding from the system account is not volume.
    per_day = txns.aggregate([
        {"$match": {"created_at": {"$gte": since}, "kind": "TRANSFER"}},
        {
            "$group": {
                "_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at", "timezone": BANK_TIME_ZONE}},
                "completed": {"$sum": {"$cond": [completed, 1, 0]}},
                "failed": {"$sum": {"$cond": [{"$eq": ["$status", TransactionStatus.FAILED]}, 1, 0]}},
                "volume": {"$sum": {"$cond": [completed, "$amount", 0]}},
            }
        },
    ])
    for row in per_day:
        day = daily.get(row["_id"])
        if day is not None:  # a clock running ahead could date a row after today
            day.update(completed=int(row["completed"]), failed=int(row["failed"]), volume=int(row["volume"]))
    return {
        "users": collection(User).count_documents({"is_system": False}),
        "transactions": sum(by_status.values()),
        "byStatus": by_status,
        "completedVolume": int(volume),
        "failures": by_status[TransactionStatus.FAILED],
        "daily": [{"date": d, **v} for d, v in daily.items()],
    }
