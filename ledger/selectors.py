"""Reads of the ledger: an account's history, newest first, joined with its transactions; its
balance at any instant; and its entries between two seqs (statements)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId

from aegis.clock import aware
from aegis.keyset import decode_seq_cursor, encode_seq_cursor
from aegis.mongo import collection
from ledger.models import EntryType, LedgerEntry
from transfers.models import INTERNAL_FIELDS, Transaction

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


LEDGER_LISTING = "ledger"  # the salt of the API history's cursors (aegis.keyset)


def _seq_range(account_id: ObjectId, lowest: int, highest: int, projection: dict | None = None) -> list[dict]:
    """The entries with lowest <= seq <= highest, newest first: an exact range of the unique
    (account_id, seq) index, so its cost is the page, never the history.

    No `hint`: the embedded server answers hinted finds by walking the whole index, and its
    planner picks (account_id, seq) for this shape. The upper bound is `$lt highest + 1`: its
    compound scan drops rows equal to a `$lte` bound (see aegis.keyset._just_after).
    """
    if highest < lowest or highest < 1:
        return []
    query = {"account_id": account_id, "seq": {"$gte": max(1, lowest), "$lt": highest + 1}}
    return list(collection(LedgerEntry).find(query, projection).sort("seq", -1))


def entries_for_account(*, account, page: int = 1, limit: int = 20, cursor: str | None = None) -> dict:
    """One page of an account's ledger, newest first, each row with its transaction.

    `seq` is dense per account (1..ledger_seq), so page p is exactly the seq range
    (ledger_seq - p*limit, ledger_seq - (p-1)*limit] at any depth, and `total` is ledger_seq.
    A `cursor` (the `nextCursor` of the page before) wins over `page`: it names the seq to
    continue below, so a walk never skips or repeats an entry while transfers commit (a page
    number would shift by the new entries). The account is read before its entries: a posting
    committing in between is simply not on this page yet.

    Returns {"rows", "page", "limit", "total", "hasNextPage", "nextCursor"}; a row is
    {"_id", "type", "direction" IN|OUT, "amount" (paise), "balance_after" (paise), "created_at",
     "transaction": {"_id", "note", "status", "from_account_id", "to_account_id", "kind", ...}}.
    """
    page, limit = page_bounds(page, limit)
    top = int(account.ledger_seq)
    scope = str(account.pk)
    position = decode_seq_cursor(cursor, listing=LEDGER_LISTING, scope=scope)
    if position is not None:
        _direction, below = position  # only Older cursors are ever issued
        highest = min(int(below) - 1, top)
        # The page this cursor's first row falls on now (new postings move it down).
        page = max(1, (top - highest) // limit + 1)
    else:
        highest = top - (page - 1) * limit
    lowest = highest - limit + 1
    rows = _seq_range(account.pk, lowest, highest)
    txns = {
        t["_id"]: t
        for t in collection(Transaction).find({"_id": {"$in": [r["transaction_id"] for r in rows]}}, INTERNAL_FIELDS)
    }
    for row in rows:
        row["direction"] = "IN" if row["type"] == EntryType.CREDIT else "OUT"
        row["transaction"] = txns.get(row["transaction_id"], {})
    has_next = lowest > 1 and highest >= 1
    next_cursor = encode_seq_cursor(lowest, listing=LEDGER_LISTING, scope=scope) if has_next else None
    return {
        "rows": rows,
        "page": page,
        "limit": limit,
        "total": top,
        "hasNextPage": has_next,
        "nextCursor": next_cursor,
    }


def recent_entries(*, account, limit: int = 6) -> list[dict]:
    """The account's last `limit` postings with their transactions (the dashboard's activity)."""
    return entries_for_account(account=account, page=1, limit=limit)["rows"]


def balance_series(*, account, points: int = 60) -> list[tuple]:
    """The last `points` (created_at, balance_after) pairs, oldest first, for a balance chart.

    The seq range (ledger_seq - points, ledger_seq]: bounded at both ends, no sort + limit.
    """
    top = int(account.ledger_seq)
    rows = _seq_range(account.pk, top - points + 1, top, {"created_at": 1, "balance_after": 1})
    return [(r["created_at"], int(r["balance_after"])) for r in reversed(rows)]


# --- balance as of an instant -----------------------------------------------------------------


@dataclass(frozen=True)
class BalanceAt:
    """An account's balance after its entry `seq` (seq 0: before its first entry, balance 0)."""

    seq: int
    balance: int  # paise
    at: datetime | None  # that entry's time


NO_ENTRY = BalanceAt(seq=0, balance=0, at=None)
AS_OF_PROBE = 16  # entries read around each guess: one index range, about a point read's cost
_AS_OF_FIELDS = {"seq": 1, "created_at": 1, "balance_after": 1}


def balance_as_of(*, account, instant: datetime, before: bool = False) -> BalanceAt:
    """The balance after the last entry at or before `instant` (strictly before, with `before`).

    An account's entries are in time order along `seq` (Account.ledger_at stamps them), so the
    answer is one seq, found by an interpolation search over exact (account, seq) ranges of
    AS_OF_PROBE entries: the time of the bracketing entries places the next guess, and two
    probes in a row that do not halve the bracket make the next one a bisection, so a search
    reads at most about 3·log2(n / AS_OF_PROBE) small ranges, and two or three on an account
    with steady traffic. An instant at or after the newest entry (the usual "as of now") reads nothing: the
    account document already holds that entry's balance, seq and time.
    """
    instant = aware(instant)

    def counts(at: datetime) -> bool:
        return at < instant if before else at <= instant

    top = int(account.ledger_seq)
    newest_at = aware(account.ledger_at) if account.ledger_at else None
    if top == 0:
        return NO_ENTRY
    if newest_at is not None and counts(newest_at):
        return BalanceAt(seq=top, balance=int(account.balance), at=newest_at)
    # Invariant: entry `lo` counts (lo 0: none does) and entry `hi` does not (hi top+1: past the end).
    lo, lo_at, answer = 0, aware(account.created_at), NO_ENTRY
    hi, hi_at = (top, newest_at) if newest_at is not None else (top + 1, None)
    bisect, slow = False, 0
    while hi - lo > 1:
        bracket = hi - lo
        first, last = _as_of_probe(lo, hi, lo_at, hi_at, instant, bisect=bisect)
        rows = _seq_range(account.pk, first, last, _AS_OF_FIELDS)  # newest first
        if len(rows) != last - first + 1:
            raise RuntimeError(f"account {account.pk}: ledger seqs {first}..{last} are not all there (run reconcile)")
        found = next((row for row in rows if counts(aware(row["created_at"]))), None)
        if found is None:
            hi, hi_at = first, aware(rows[-1]["created_at"])
        else:
            answer = BalanceAt(int(found["seq"]), int(found["balance_after"]), aware(found["created_at"]))
            if found["seq"] < last or last == hi - 1:  # the next entry is known not to count
                return answer
            lo, lo_at = last, answer.at
        # A miss still narrows the bracket to one side of a known time, so the next interpolation
        # is far closer; only two probes in a row that do not halve it switch to bisection.
        slow = slow + 1 if (hi - lo) * 2 > bracket else 0
        bisect = slow >= 2
    return answer


def _as_of_probe(lo, hi, lo_at, hi_at, instant, *, bisect: bool) -> tuple[int, int]:
    """The seq range to read next, strictly inside (lo, hi): AS_OF_PROBE entries, or the whole
    bracket once it is at most twice that."""
    if hi - lo - 1 <= 2 * AS_OF_PROBE:
        return lo + 1, hi - 1
    if hi_at is None:  # the newest entry's time is unknown (an account from before ledger_at)
        return hi - AS_OF_PROBE, hi - 1
    if bisect or hi_at <= lo_at:
        guess = (lo + hi) // 2
    else:
        share = min(1.0, max(0.0, (instant - lo_at) / (hi_at - lo_at)))
        guess = lo + round(share * (hi - lo))
    first = min(max(lo + 1, guess - AS_OF_PROBE // 2), hi - AS_OF_PROBE)
    return first, first + AS_OF_PROBE - 1


def entries_between(*, account, after_seq: int, through_seq: int, chunk: int = 500) -> Iterator[list[dict]]:
    """The entries with after_seq < seq <= through_seq, oldest first, in chunks of exact seq
    ranges: a statement of any length holds one chunk at a time."""
    low = max(1, int(after_seq) + 1)
    while low <= through_seq:
        high = min(int(through_seq), low + chunk - 1)
        rows = _seq_range(account.pk, low, high)
        rows.reverse()
        yield rows
        low = high + 1
