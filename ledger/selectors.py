"""Reads of the ledger: an account's history, newest first, joined with its transactions."""

from __future__ import annotations

from bson import ObjectId

from aegis.mongo import collection
from ledger.models import EntryType, LedgerEntry
from transfers.models import Transaction

MAX_PAGE_SIZE = 50
MAX_PAGE = 100_000  # far past any real listing; keeps skip() within what the database accepts


def page_number(value) -> int:
    """A page number from a query string or a form, clamped to 1..MAX_PAGE; not a number: page 1.

    Only ASCII digits count (int() would take "١٠", " 1_0 " and, slowly, 4,000-digit strings);
    anything longer than MAX_PAGE's digits is past the end anyway.
    """
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text.isascii() or not text.isdigit():
        return 1
    if len(text) > len(str(MAX_PAGE)):
        return MAX_PAGE
    return min(max(1, int(text)), MAX_PAGE)


def page_bounds(page, limit, *, default_limit: int = 20) -> tuple[int, int]:
    """Clamp user-supplied paging: 1 <= page <= MAX_PAGE, 1 <= limit <= 50 (the seed's cap)."""
    page = page_number(page)
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        limit = default_limit
    return page, min(max(1, limit), MAX_PAGE_SIZE)


def entries_for_account(*, account_id: ObjectId, page: int = 1, limit: int = 20) -> dict:
    """One page of an account's ledger, newest first, each row with its transaction.

    Returns {"rows": [...], "page", "limit", "total", "hasNextPage"}; a row is
    {"_id", "type", "direction" IN|OUT, "amount" (paise), "balance_after" (paise), "created_at",
     "transaction": {"_id", "note", "status", "from_account_id", "to_account_id", "kind", ...}}.
    """
    page, limit = page_bounds(page, limit)
    entries = collection(LedgerEntry)
    total = entries.count_documents({"account_id": account_id})
    rows = list(
        entries.find({"account_id": account_id}).sort("seq", -1).skip((page - 1) * limit).limit(limit)
    )
    txns = {
        t["_id"]: t
        for t in collection(Transaction).find(
            {"_id": {"$in": [r["transaction_id"] for r in rows]}}, {"fingerprint": 0, "attempt_id": 0}
        )
    }
    for row in rows:
        row["direction"] = "IN" if row["type"] == EntryType.CREDIT else "OUT"
        row["transaction"] = txns.get(row["transaction_id"], {})
    return {"rows": rows, "page": page, "limit": limit, "total": total, "hasNextPage": page * limit < total}


def balance_series(*, account_id: ObjectId, points: int = 60) -> list[tuple]:
    """The last `points` (created_at, balance_after) pairs, oldest first, for a balance chart."""
    rows = list(
        collection(LedgerEntry)
        .find({"account_id": account_id}, {"created_at": 1, "balance_after": 1})
        .sort("seq", -1)
        .limit(points)
    )
    return [(r["created_at"], int(r["balance_after"])) for r in reversed(rows)]
