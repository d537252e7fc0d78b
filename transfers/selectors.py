"""Reads of transfers: lookups by id and key, the staff listing with filters, statistics, the
customer's history, and the shape pages show (`transaction_row`: templates cannot read `_id`;
money stays integer paise, the `inr` filter formats it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from accounts.models import Account, User
from accounts.selectors import bank_floor
from aegis import keyset
from aegis.clock import bank_day_start
from aegis.errors import NotFound
from aegis.ids import parse_object_id
from aegis.mongo import collection
from ledger.selectors import page_bounds
from transfers.exceptions import SenderNotActive
from transfers.models import INTERNAL_FIELDS, MAX_USER_RETRIES, Transaction, TransactionStatus
from transfers.rollups import rollup_days, rollup_totals, transfer_counts

# Never shown outside the engine: the claim internals. (Staff pages may show the key itself.)


def transaction_for_key(*, from_account_id: ObjectId, idempotency_key: str) -> dict | None:
    return collection(Transaction).find_one(
        {"from_account_id": from_account_id, "idempotency_key": idempotency_key}, INTERNAL_FIELDS
    )


def key_fits_intent(intent: dict, *, from_account_id: ObjectId) -> bool:
    """Whether intent["idempotency_key"] may carry this intent (to_account + amount): False when
    it already names another one (the form was changed: a new transfer, which needs a new key)."""
    found = transaction_for_key(from_account_id=from_account_id, idempotency_key=intent["idempotency_key"])
    return not found or (str(found["to_account_id"]), int(found["amount"])) == (intent["to_account"], intent["amount"])


def sender_check(*, account: Account) -> None:  # before anything is written; the engine checks again
    if not account.is_active:
        raise SenderNotActive()


def transaction_get(*, transaction_id) -> dict:
    """Any transaction by id (staff use), as pages show it; NotFound for a malformed or unknown id."""
    oid = parse_object_id(transaction_id)
    doc = collection(Transaction).find_one({"_id": oid}, INTERNAL_FIELDS) if oid else None
    if doc is None:
        raise NotFound(thing="Transaction")
    return transaction_row(doc)


_ROW_TEXTS = ("note", "kind", "failure_reason", "failure_detail", "requested_by", "idempotency_key")


def transaction_row(doc: dict, *, viewer_account_id: ObjectId | None = None) -> dict:
    """A transaction document as the pages show it (no claim internals)."""
    retry_count, status = int(doc.get("retry_count", 0)), doc.get("status", "")
    failed = status == TransactionStatus.FAILED
    row = {
        "id": str(doc["_id"]),
        "from_account": str(doc.get("from_account_id", "")),
        "to_account": str(doc.get("to_account_id", "")),
        "amount": int(doc.get("amount", 0)),
        "currency": doc.get("currency", "INR"),
        # failure_detail and requested_by are for staff only (customer templates never show them):
        # the real reason behind a refusal the sender saw as "cannot receive payments", and who
        # asked for a funding.
        **{key: doc.get(key, "") for key in _ROW_TEXTS},
        **{key: doc.get(key) for key in ("created_at", "updated_at", "completed_at")},
        "status": status,
        "retry_count": retry_count,
        "max_retries": MAX_USER_RETRIES,
        "can_retry": failed and retry_count < MAX_USER_RETRIES,
        "retries_exhausted": failed and retry_count >= MAX_USER_RETRIES,
    }
    if viewer_account_id is not None:
        row["direction"] = "OUT" if doc.get("from_account_id") == viewer_account_id else "IN"
    return row


# --- the staff listing: keyset pages in bounded time windows (aegis/keyset.py) ----------------

STAFF_LISTING = "staff-transactions"
# Before any row of the bank can exist: hosts' clocks, and users made just before `bootstrap`.
FLOOR_MARGIN = timedelta(days=1)
USERS_INDEX = "users_listing"  # (is_system, date_joined, _id): accounts/0007
# These reads name their index in comments, never in a `hint` (aegis.keyset._probe says why);
# tests/pages/test_staff_keyset.py checks the plan the server chose for each.


def _scope(status: str | None, account_id: ObjectId | None) -> str:
    # A cursor is only good for the filters it was made under.
    return f"{status or '*'}|{account_id or '*'}"


def _merge_sides(pages: list[keyset.WindowPage], cursor: keyset.Cursor | None, limit: int) -> keyset.WindowPage:
    """One page from a sender-side and a receiver-side page read from the same position."""
    by_id = {row["_id"]: row for page in pages for row in page.rows}
    key = lambda row: keyset.Position.of(row).key()  # noqa: E731
    merged = sorted(by_id.values(), key=key, reverse=True)
    above: list[dict] = []
    if cursor is not None and cursor.direction == keyset.NEWER:
        # A side past its top re-read its newest page, which holds all of its rows above the position.
        above = [row for row in reversed(merged) if key(row) > cursor.position.key()]
        past_top = all(p.newer is None for p in pages) and len(above) <= limit
    if cursor is None or (cursor.direction == keyset.NEWER and past_top):  # the newest page, as it is now
        shown = merged[:limit]
        more = len(merged) > limit or any(p.older is not None for p in pages)
        newer = None
    elif cursor.direction == keyset.OLDER:
        shown = merged[:limit]
        more = len(merged) > limit or any(p.older is not None for p in pages)
        newer = True
    else:  # Newer: the `limit` rows just above the position, from either side
        shown = list(reversed(above[:limit]))
        more, newer = True, True
    span = _span(shown, limit, fallback=cursor.window if cursor else keyset.MIN_WINDOW)
    return keyset.WindowPage(
        rows=shown,
        newer=keyset.Cursor(keyset.NEWER, keyset.Position.of(shown[0]), span) if shown and newer else None,
        older=keyset.Cursor(keyset.OLDER, keyset.Position.of(shown[-1]), span) if shown and more else None,
    )


def _span(rows: list[dict], limit: int, *, fallback: timedelta) -> timedelta:
    """The time one page of the merged rows took: both sides' next window (never wider than either's)."""
    if len(rows) < 2:
        return fallback
    newest, oldest = keyset.Position.of(rows[0]).created_at, keyset.Position.of(rows[-1]).created_at
    return max((newest - oldest) * (limit + 1) / (len(rows) - 1), keyset.MIN_WINDOW)


# The first window when no count says better: too narrow costs a few cheap probes, too wide a scan.
DEFAULT_WINDOW = timedelta(hours=1)


def _estimated_rows(status: str | None) -> int:
    """A rough count of the scope's rows for the first window (the cursor then carries a measured one).

    0 means unknown: rows in flight are not rolled up, and a bank bulk-built without
    `rollups_rebuild` has none yet.
    """
    totals = rollup_totals()  # a handful of small documents; as of the last delivered event
    settled = {TransactionStatus.COMPLETED: totals["completed"], TransactionStatus.FAILED: totals["failed"]}
    if status is None:
        return int(sum(settled.values()))
    return int(settled.get(status, 0))


def _first_window(rows: int, *, since: datetime, limit: int, now: datetime) -> timedelta:
    if rows <= 0:
        return DEFAULT_WINDOW
    return keyset.first_window(rows_in_scope=rows, since=since, limit=limit, now=now)


def _staff_reader(*, status: str | None, account_id: ObjectId | None, limit: int):
    """fetch(cursor) -> WindowPage for one filter combination, each read bounded at both ends."""
    txns = collection(Transaction)
    now = datetime.now(UTC)
    status_query = {"status": status} if status else {}
    common = {"limit": limit, "projection": INTERNAL_FIELDS, "now": now}
    if account_id is None:
        floor = bank_floor()
        common["floor"] = floor
        query = status_query  # txn_status_created_id, or txn_created_id without a status
        first = _first_window(_estimated_rows(status), since=floor, limit=limit, now=now)

        return lambda cursor: keyset.window_page(txns, query, cursor=cursor, window=first, **common)

    account = collection(Account).find_one({"_id": account_id}, {"created_at": 1, "ledger_seq": 1})
    if account is None:  # no such account: no transfer can name it
        return lambda cursor: keyset.WindowPage(rows=[], newer=None, older=None)
    floor = keyset.Position.of({"created_at": account["created_at"], "_id": account_id}).created_at - FLOOR_MARGIN
    # Its entry count is exact; a status filter keeps about that status's share of them.
    rows = int(account.get("ledger_seq") or 0)
    if status:
        total, share = _estimated_rows(None), _estimated_rows(status)
        rows = rows * share // total if total and share else 0
    first = _first_window(rows, since=floor, limit=limit, now=now)
    # Status is not in these indexes: a rare status widens the windows (more rows examined per page).
    sides = [
        {"from_account_id": account_id, **status_query},  # txn_from_created_id
        {"to_account_id": account_id, **status_query},  # txn_to_created_id
    ]

    def fetch(cursor):
        pages = [keyset.window_page(txns, query, cursor=cursor, window=first, floor=floor, **common) for query in sides]
        return _merge_sides(pages, cursor, limit)

    return fetch


def transactions_list(
    *,
    status: str | None = None,
    account_id: ObjectId | None = None,
    cursor: str | None = None,
    page=1,
    limit=20,
) -> dict:
    """Staff listing, newest first: filter by status and by account (as sender or receiver).

    Keyset pages (`cursor`: a `nextCursor`/`newer`/`older` token of the same filters, else
    InvalidCursor); without a cursor, `page` N is walked from the top, at most
    keyset.MAX_WALKED_PAGE (PageTooDeep beyond). No total: nothing counts the history cheaply.
    """
    page, limit = page_bounds(page, limit)
    scope = _scope(status, account_id)
    start = keyset.decode_cursor(cursor, listing=STAFF_LISTING, scope=scope)
    fetch = _staff_reader(status=status, account_id=account_id, limit=limit)
    result = fetch(start) if start is not None or page == 1 else keyset.walk_to_page(fetch, page)

    def token(c):
        return keyset.encode_cursor(c, listing=STAFF_LISTING, scope=scope) if c else None

    newer, older = token(result.newer), token(result.older)
    return keyset.listing_page(result.rows, newer=newer, older=older, page=page, limit=limit)


def transaction_stats(*, days: int = 30, now: datetime | None = None) -> dict:
    """Totals for the staff console, and per-day completed volume / completed vs failed counts.

    From the rollups (transfers/rollups.py): as of the last delivered outbox event (`asOf`),
    a fixed handful of small documents whatever the history; in-flight records are counted live.
    """
    now = now or datetime.now(UTC)
    totals = rollup_totals()
    by_status = transfer_counts(totals)
    # Days are IST days (the clock every page shows): the window starts at an IST midnight.
    since = bank_day_start(now) - timedelta(days=days - 1)
    first, last = since.date(), (since + timedelta(days=days - 1)).date()
    rolled = rollup_days(first, last)
    daily = {}
    for i in range(days):
        day = (first + timedelta(days=i)).isoformat()
        # Customer transfers only, as in completedVolume: funding from the system account is not volume.
        figures = rolled.get(day, {})
        daily[day] = {name: int(figures.get(name, 0)) for name in ("volume", "completed", "failed")}
    return {
        # Proportional to the number of users, never to the transfers (docs/statistics.md).
        "users": collection(User).count_documents({"is_system": False}),
        "transactions": sum(by_status.values()),
        "byStatus": by_status,
        "completedVolume": int(totals["volume"]),
        "failures": by_status[TransactionStatus.FAILED],
        "daily": [{"date": d, **v} for d, v in daily.items()],
        "asOf": totals["asOf"],
    }


# --- the customer's history (/transactions) -------------------------------------------------
# Two index-backed reads merged in Python, never an `$or` (the embedded server plans `$or` as a
# collection scan): what the customer sent, any status, on (from_account_id, created_at, _id),
# and what they received, on (to_account_id, created_at, _id). `status` is not in the receiving
# index, and adding it to the query would make the server scan the collection (measured 960 ms
# against 20 ms over 50k rows), so non-completed receipts are read and dropped here: they are
# the few failed attempts of other people.

HISTORY_PAGE_SIZE = 15
_HISTORY_SIDES = ("sent", "received")
# A page is topped up from a side at most this many times (a side full of someone else's failed
# attempts must not turn one page into a scan); a short page then links on from where it stopped.
_HISTORY_TOP_UPS = 4


@dataclass(frozen=True)
class HistoryCursor:
    """One position in the merged listing, applied to both sides, with each side's own window."""

    direction: str
    position: keyset.Position
    windows: tuple[timedelta, timedelta]  # (sent, received): their densities differ


def _history_queries(account_id: ObjectId) -> dict:
    return {"sent": {"from_account_id": account_id}, "received": {"to_account_id": account_id}}


def _history_shown(side: str, doc: dict) -> bool:
    # Someone else's failed attempt to pay me is not mine to see.
    return side == "sent" or doc.get("status") == TransactionStatus.COMPLETED


def encode_history_cursor(cursor: HistoryCursor, *, account_id) -> str:
    """Two signed keyset cursors (same position, one window each), joined by `~`."""
    return "~".join(
        keyset.encode_cursor(
            keyset.Cursor(cursor.direction, cursor.position, window), listing=f"history.{side}", scope=str(account_id)
        )
        for side, window in zip(_HISTORY_SIDES, cursor.windows, strict=True)
    )


def decode_history_cursor(token, *, account_id) -> HistoryCursor | None:
    """The cursor behind `token`; None for none; keyset.InvalidCursor for anything not ours."""
    if token in (None, ""):
        return None
    if not isinstance(token, str) or len(token) > 1024 or token.count("~") != 1:
        raise keyset.InvalidCursor()
    parts = [
        keyset.decode_cursor(part, listing=f"history.{side}", scope=str(account_id))
        for side, part in zip(_HISTORY_SIDES, token.split("~"), strict=True)
    ]
    sent, received = parts
    if sent is None or received is None or (sent.direction, sent.position) != (received.direction, received.position):
        raise keyset.InvalidCursor()
    return HistoryCursor(sent.direction, sent.position, (sent.window, received.window))


class _Side:
    """What one side has handed over so far: its shown rows, and how far down (or up) it has read."""

    def __init__(self, name: str, page: keyset.WindowPage, width: timedelta, direction: str):
        self.name, self.rows, self.page, self.width = name, [], None, width
        self.direction = direction
        self.take(page)

    def take(self, page: keyset.WindowPage) -> None:
        self.page = page
        self.rows += [r for r in page.rows if _history_shown(self.name, r)]
        span = page.older or page.newer
        self.width = span.window if span else self.width

    def more(self) -> keyset.Cursor | None:
        """Where this side continues, when it has rows past the ones read (else None)."""
        page = self.page
        if self.direction == keyset.OLDER:
            return page.older
        return page.newer if page.newer is not None else None

    def horizon(self) -> keyset.Position:
        """The last row this side read, in the walk's direction: rows past it are unread."""
        raw = self.page.rows
        return keyset.Position.of(raw[-1] if self.direction == keyset.OLDER else raw[0])


def _history_read(account, cursor: HistoryCursor | None, limit: int, now: datetime) -> keyset.WindowPage:
    """One merged page, newest first; `newer` / `older` are HistoryCursors (None at either end)."""
    txns = collection(Transaction)
    queries = _history_queries(account.pk)
    floor = account.created_at - keyset.CLOCK_SKEW  # nothing of an account predates its opening
    first = keyset.first_window(
        rows_in_scope=max(1, int(account.ledger_seq) // 2), since=account.created_at, limit=limit, now=now
    )
    direction = cursor.direction if cursor else keyset.OLDER
    widths = cursor.windows if cursor else (first, first)

    def read(name: str, side_cursor: keyset.Cursor | None, width: timedelta) -> keyset.WindowPage:
        return keyset.window_page(
            txns,
            queries[name],
            limit=limit,
            floor=floor,
            cursor=side_cursor,
            window=width,
            projection=INTERNAL_FIELDS,
            now=now,
        )

    sides = [
        _Side(name, read(name, keyset.Cursor(direction, cursor.position, w) if cursor else None, w), w, direction)
        for name, w in zip(_HISTORY_SIDES, widths, strict=True)
    ]
    if direction == keyset.NEWER:
        at_top = all(s.page.newer is None for s in sides)  # window_page fell back to its newest page
        newer_rows = [r for s in sides for r in s.rows if keyset.Position.of(r).key() > cursor.position.key()]
        if at_top and len(newer_rows) <= limit:
            return _history_read(account, None, limit, now)  # walked back to the top: the newest page now

    def window_rows() -> tuple[list[dict], keyset.Position | None, _Side | None]:
        """Rows every side has fully read (between the cursor and the nearest horizon), in walk order."""
        cut, binding = None, None
        for side in sides:
            if side.more() is None or not side.page.rows:
                continue
            edge = side.horizon()
            if cut is None or (edge.key() > cut.key() if direction == keyset.OLDER else edge.key() < cut.key()):
                cut, binding = edge, side
        older = direction == keyset.OLDER
        start = cursor.position.key() if cursor is not None else None
        stop = cut.key() if cut is not None else None

        def inside(row: dict) -> bool:
            key = keyset.Position.of(row).key()
            if older:
                return (start is None or key < start) and (stop is None or key >= stop)
            return key > start and (stop is None or key <= stop)

        rows = sorted(
            (r for s in sides for r in s.rows if inside(r)), key=lambda r: keyset.Position.of(r).key(), reverse=older
        )
        return rows, cut, binding

    rows, cut, binding = window_rows()
    for _ in range(_HISTORY_TOP_UPS):
        if len(rows) > limit or binding is None:
            break
        binding.take(read(binding.name, binding.more(), binding.width))
        rows, cut, binding = window_rows()
    more_beyond = len(rows) > limit or cut is not None
    shown = rows[:limit]
    # Where the next page in this direction starts: after the last row shown, or, on a page cut
    # short by the top-up bound, after the last row read (everything before it was read).
    onward = keyset.Position.of(shown[-1]) if len(rows) > limit or (shown and cut is None) else cut
    windows = tuple(s.width for s in sides)
    if direction == keyset.NEWER:
        shown.reverse()
        newer = HistoryCursor(keyset.NEWER, onward, windows) if more_beyond and onward else None
        older_edge = keyset.Position.of(shown[-1]) if shown else cursor.position
        older = HistoryCursor(keyset.OLDER, older_edge, windows)
        return keyset.WindowPage(rows=shown, newer=newer, older=older)
    older = HistoryCursor(keyset.OLDER, onward, windows) if more_beyond and onward else None
    newer_edge = keyset.Position.of(shown[0]) if shown else (cursor.position if cursor else None)
    newer = HistoryCursor(keyset.NEWER, newer_edge, windows) if cursor is not None and newer_edge else None
    return keyset.WindowPage(rows=shown, newer=newer, older=older)


def account_history(
    *,
    account: Account,
    cursor: str | None = None,
    page: int = 1,
    limit: int = HISTORY_PAGE_SIZE,
    now: datetime | None = None,
) -> dict:
    """A customer's history, newest first: everything they sent (any status) and everything
    they received that completed. `cursor` (a Newer/Older link) wins over `page`; `?page=N`
    (old links) walks at most keyset.MAX_WALKED_PAGE pages, and a page past the end shows the
    last one. No total: nothing exact counts this listing (ledger_seq counts completed postings).

    Returns keyset.listing_page of transaction documents. Raises keyset.InvalidCursor for a
    tampered, foreign or malformed cursor.
    """
    now = now or datetime.now(UTC)
    limit = max(1, min(int(limit), 50))
    position = decode_history_cursor(cursor, account_id=account.pk)
    if position is not None:
        result = _history_read(account, position, limit, now)
    else:
        last_full: list[keyset.WindowPage] = []

        def fetch(at):
            got = _history_read(account, at, limit, now)
            if got.rows:
                last_full[:] = [got]
            return got

        result = keyset.walk_to_page(fetch, max(1, min(int(page), keyset.MAX_WALKED_PAGE)))
        if not result.rows and last_full:  # a stale deep link: the last page, not an empty one
            result = last_full[0]

    def token(at: HistoryCursor | None) -> str | None:
        return encode_history_cursor(at, account_id=account.pk) if at else None

    return keyset.listing_page(result.rows, newer=token(result.newer), older=token(result.older), limit=limit)
