"""Reads of transfers: lookups by id and key, the staff listing with filters, statistics, the
customer's history, and the shape pages show (`transaction_row`: templates cannot read `_id`;
money stays integer paise, the `inr` filter formats it)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from bson import ObjectId

from accounts.models import Account, User
from accounts.selectors import FUNDING_NAME, bank_floor, names_of_accounts
from aegis import keyset
from aegis.clock import bank_day_start, bank_day_start_of, parse_bank_date
from aegis.errors import NotFound, ValidationFailed
from aegis.ids import parse_object_id
from aegis.money import parse_amount
from aegis.mongo import collection
from ledger.models import LedgerEntry
from ledger.selectors import page_bounds
from transfers.exceptions import SenderNotActive
from transfers.models import INTERNAL_FIELDS, MAX_USER_RETRIES, Transaction, TransactionKind, TransactionStatus
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
    return not found or carries_intent(found, intent)


def carries_intent(found: dict, intent: dict) -> bool:
    """Whether the stored transaction `found` is this intent (same recipient and amount)."""
    return (str(found["to_account_id"]), int(found["amount"])) == (intent["to_account"], intent["amount"])


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


@dataclass(frozen=True)
class StaffPeriod:
    """The staff listing's date range: `since` (inclusive) to `until` (exclusive), either open.

    It bounds the time windows themselves (the floor and the ceiling of every probe), so a
    range costs what the rows inside it cost, never the history outside it.
    """

    since: datetime | None = None
    until: datetime | None = None

    def key(self) -> str:
        ms = lambda t: str(int(t.timestamp() * 1000)) if t else "*"  # noqa: E731
        return f"{ms(self.since)}-{ms(self.until)}"


ANY_TIME = StaffPeriod()


def _scope(status: str | None, account_id: ObjectId | None, period: StaffPeriod = ANY_TIME) -> str:
    # A cursor is only good for the filters it was made under.
    base = f"{status or '*'}|{account_id or '*'}"
    return base if period == ANY_TIME else f"{base}|{period.key()}"


def _bounded(floor: datetime, now: datetime, period: StaffPeriod) -> tuple[datetime, datetime]:
    """(floor, now) for keyset.window_page inside `period`.

    window_page reads up to `now + CLOCK_SKEW` inclusive (as `< the next millisecond`), so an
    exclusive `until` becomes a `now` of until − 1 ms − CLOCK_SKEW: the first probe is then
    `created_at < until` exactly.
    """
    if period.since is not None:
        floor = max(floor, period.since)
    if period.until is not None:
        now = min(now, period.until - timedelta(milliseconds=1) - keyset.CLOCK_SKEW)
    return floor, now


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


def _staff_reader(*, status: str | None, account_id: ObjectId | None, limit: int, period: StaffPeriod = ANY_TIME):
    """fetch(cursor) -> WindowPage for one filter combination, each read bounded at both ends
    (and inside `period`: its ends are the floor and ceiling of every window)."""
    txns = collection(Transaction)
    now = datetime.now(UTC)
    status_query = {"status": status} if status else {}
    if account_id is None:
        floor = bank_floor()
        query = status_query  # txn_status_created_id, or txn_created_id without a status
        # The density comes from the whole history (the counters' span), the bounds from the period.
        first = _first_window(_estimated_rows(status), since=floor, limit=limit, now=now)
        floor, ceiling = _bounded(floor, now, period)
        common = {"limit": limit, "projection": INTERNAL_FIELDS, "now": ceiling, "floor": floor}

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
    floor, ceiling = _bounded(floor, now, period)
    common = {"limit": limit, "projection": INTERNAL_FIELDS, "now": ceiling}
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
    period: StaffPeriod = ANY_TIME,
    cursor: str | None = None,
    page=1,
    limit=20,
) -> dict:
    """Staff listing, newest first: filter by status, by account (as sender or receiver) and by
    a date range (`period`, which bounds the windows).

    Keyset pages (`cursor`: a `nextCursor`/`newer`/`older` token of the same filters, else
    InvalidCursor); without a cursor, `page` N is walked from the top, at most
    keyset.MAX_WALKED_PAGE (PageTooDeep beyond). No total: nothing counts the history cheaply.
    """
    page, limit = page_bounds(page, limit)
    scope = _scope(status, account_id, period)
    start = keyset.decode_cursor(cursor, listing=STAFF_LISTING, scope=scope)
    fetch = _staff_reader(status=status, account_id=account_id, limit=limit, period=period)
    result = fetch(start) if start is not None or page == 1 else keyset.walk_to_page(fetch, page)

    def token(c):
        return keyset.encode_cursor(c, listing=STAFF_LISTING, scope=scope) if c else None

    newer, older = token(result.newer), token(result.older)
    return keyset.listing_page(result.rows, newer=newer, older=older, page=page, limit=limit)


STAFF_SEARCH = "staff-transactions-search"
# Rows examined per request when a filter the indexes cannot answer (the amount) is on: a page
# may come back short, saying how far back it looked, with a cursor to search older.
SEARCH_BUDGET = 300
SEARCH_BATCH = 50  # rows per window read while searching (each read stays far under the plan check's 250)


def transactions_search(
    *,
    min_amount: int | None = None,
    max_amount: int | None = None,
    status: str | None = None,
    account_id: ObjectId | None = None,
    period: StaffPeriod = ANY_TIME,
    cursor: str | None = None,
    limit: int = 20,
    budget: int = SEARCH_BUDGET,
) -> dict:
    """The staff listing with an amount range (paise, inclusive), newest first, older-ward only.

    The amount is in no index, so the rows of the other filters are read a window at a time
    (transactions_list's reader) and matched here, examining at most `budget` rows per request.
    A page is full, or the search reached the oldest row of the filters, or the budget ran out:
    then `searchedTo` is the instant of the last row examined and `older` continues from it
    ("Search older"). Each request thus reads at most budget + one batch of rows at any history.
    `cursor` is a token this search answered for the same filters, else keyset.InvalidCursor.
    """
    limit = max(1, min(int(limit), 50))
    amounts = f"{min_amount if min_amount is not None else '*'}-{max_amount if max_amount is not None else '*'}"
    scope = f"{_scope(status, account_id, period)}|{amounts}"
    start = keyset.decode_cursor(cursor, listing=STAFF_SEARCH, scope=scope)
    if start is not None and start.direction != keyset.OLDER:
        raise keyset.InvalidCursor()
    fetch = _staff_reader(status=status, account_id=account_id, limit=SEARCH_BATCH, period=period)

    def wanted(doc: dict) -> bool:
        amount = int(doc.get("amount", 0))
        return (min_amount is None or amount >= min_amount) and (max_amount is None or amount <= max_amount)

    shown: list[dict] = []
    examined, at, resume, last = 0, start, None, None
    while True:
        got = fetch(at)
        span = got.older or got.newer
        window = span.window if span else (at.window if at else DEFAULT_WINDOW)
        stopped = False
        for i, doc in enumerate(got.rows):
            examined, last = examined + 1, doc
            if wanted(doc):
                shown.append(doc)
            if len(shown) >= limit or examined >= budget:
                stopped = True
                if i < len(got.rows) - 1 or got.older is not None:  # rows remain past this one
                    resume = keyset.Cursor(keyset.OLDER, keyset.Position.of(doc), window)
                break
        if stopped or got.older is None:
            break
        at = got.older
    older = keyset.encode_cursor(resume, listing=STAFF_SEARCH, scope=scope) if resume else None
    page = keyset.listing_page(shown, older=older, limit=limit)
    out_of_budget = resume is not None and len(shown) < limit
    return page | {"examined": examined, "searchedTo": last["created_at"] if out_of_budget and last else None}


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

#
# Filters (docs/history.md). The date range, the direction and the status narrow the reads
# themselves: the days bound the windows at both ends, a direction reads one side only, and a
# status is an equality of the (from|to_account_id, status, created_at, _id) indexes. Amount and
# text cannot be indexed that way, so they are applied here to a bounded scan budget: each side
# is read in batches of _SCAN_BATCH rows, at most HISTORY_SCAN_BUDGET rows a request, and a page
# the budget cut short says how far back it searched and links on ("Search older").

HISTORY_PAGE_SIZE = 15
_HISTORY_SIDES = ("sent", "received")
# A page is topped up from a side at most this many times (a side full of someone else's failed
# attempts must not turn one page into a scan); a short page then links on from where it stopped.
_HISTORY_TOP_UPS = 4
_SCAN_BATCH = 50
# Rows handed over per request when amount or text filters apply (the windows' probes examine up
# to about twice that: a window is sized from the last one's density, tests/transfers/
# test_history_filters.py measures it). At 1M transfers a request costs the same.
HISTORY_SCAN_BUDGET = 300
HISTORY_TEXT_MAX = 60
HISTORY_FILTER_FIELDS = ("from", "to", "direction", "status", "min", "max", "q")  # the GET names
# The statuses a customer can filter by (INITIATED is a transfer's first instant, never shown long).
HISTORY_STATUSES = (TransactionStatus.COMPLETED, TransactionStatus.FAILED, TransactionStatus.PROCESSING)


@dataclass(frozen=True)
class HistoryFilters:
    """What the customer asked the history for; empty values mean "any"."""

    first_day: date | None = None  # IST days, both included
    last_day: date | None = None
    direction: str = ""  # "IN" | "OUT"
    status: str = ""
    min_paise: int | None = None
    max_paise: int | None = None
    text: str = ""

    def params(self) -> dict[str, str]:
        """The query parameters that ask for these filters (the links of their pages keep them)."""
        values = {
            "from": self.first_day.isoformat() if self.first_day else "",
            "to": self.last_day.isoformat() if self.last_day else "",
            "direction": self.direction,
            "status": self.status,
            "min": _rupee_text(self.min_paise),
            "max": _rupee_text(self.max_paise),
            "q": self.text,
        }
        return {name: value for name, value in values.items() if value}

    @property
    def active(self) -> bool:
        return bool(self.params())

    @property
    def scanned(self) -> bool:
        """Whether rows must be examined here (amount, text): the scan budget applies."""
        return self.min_paise is not None or self.max_paise is not None or bool(self.text)

    def scope(self, account_id) -> str:
        # A cursor is only good for the filters it was made under; no filters: the plain history's.
        if not self.active:
            return str(account_id)
        digest = hashlib.sha256(urlencode(sorted(self.params().items())).encode()).hexdigest()[:20]
        return f"{account_id}|{digest}"

    def sides(self) -> tuple[str, ...]:
        """The sides worth reading: a direction reads one; a status other than COMPLETED has no
        received rows to show (only completed receipts are the customer's)."""
        names = {"OUT": ("sent",), "IN": ("received",)}.get(self.direction, _HISTORY_SIDES)
        if self.status and self.status != TransactionStatus.COMPLETED:
            names = tuple(n for n in names if n != "received")
        return names

    def matches(self, doc: dict, names: list[str]) -> bool:
        """The filters applied here (the date range, direction and status are the reads' own)."""
        amount = int(doc.get("amount", 0))
        if self.min_paise is not None and amount < self.min_paise:
            return False
        if self.max_paise is not None and amount > self.max_paise:
            return False
        if self.text:
            needle = self.text.casefold()
            return any(needle in str(text).casefold() for text in [doc.get("note", ""), *names])
        return True


def _rupee_text(paise: int | None) -> str:
    if paise is None:
        return ""
    rupees, rest = divmod(int(paise), 100)
    return f"{rupees}.{rest:02d}" if rest else str(rupees)


def history_filters_parse(query) -> tuple[HistoryFilters, dict[str, str]]:
    """The filters a GET query asks for, and a message per field it got wrong ({} when none).

    Nothing is read for a query with errors: the page shows them (400) and keeps what was typed.
    """
    errors: dict[str, str] = {}

    def text_of(name: str) -> str:
        value = query.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    def parsed(name: str, parse):
        value = text_of(name)
        if not value:
            return None
        try:
            return parse(value)
        except ValidationFailed as err:
            errors[name] = err.message
            return None

    first = parsed("from", lambda v: parse_bank_date(v, field="From"))
    last = parsed("to", lambda v: parse_bank_date(v, field="To"))
    low = parsed("min", lambda v: parse_amount(v, field="Minimum amount"))
    high = parsed("max", lambda v: parse_amount(v, field="Maximum amount"))
    if first and last and first > last:
        errors["to"] = "To must be on or after From."
    if low is not None and high is not None and low > high:
        errors["max"] = "Maximum amount must be at least the minimum amount."
    direction, status, text = text_of("direction").upper(), text_of("status").upper(), text_of("q")
    if direction not in ("", "IN", "OUT"):
        errors["direction"] = "Direction must be In or Out."
    if status and status not in HISTORY_STATUSES:
        errors["status"] = "Status must be one of: " + ", ".join(s.title() for s in HISTORY_STATUSES) + "."
    if len(text) > HISTORY_TEXT_MAX:
        errors["q"] = f"Search text can be at most {HISTORY_TEXT_MAX} characters."
    if errors:
        return HistoryFilters(), errors
    return HistoryFilters(first, last, direction, status, low, high, text), {}


class _Names:
    """How the viewer sees each counterparty: their payee nickname when saved, else the holder's
    short name (accounts.selectors.party_name), "Aegis funding" for funding. Looked up once per
    request, in batches (two `_id $in` reads of the batch's unknown accounts)."""

    def __init__(self, nicknames: dict | None):
        self.nicknames, self.holders = dict(nicknames or {}), {}

    @staticmethod
    def counterparty(doc: dict, viewer_account_id) -> ObjectId | None:
        sent = doc.get("from_account_id") == viewer_account_id
        return doc.get("to_account_id") if sent else doc.get("from_account_id")

    @staticmethod
    def funding(doc: dict, viewer_account_id) -> bool:
        return doc.get("kind") == TransactionKind.SYSTEM_FUNDING and doc.get("to_account_id") == viewer_account_id

    def learn(self, docs: list[dict], viewer_account_id) -> None:
        wanted = {self.counterparty(d, viewer_account_id) for d in docs if not self.funding(d, viewer_account_id)}
        unknown = {oid for oid in wanted if oid is not None and oid not in self.holders}
        if unknown:
            self.holders |= {oid: "" for oid in unknown} | names_of_accounts(unknown, full=False)

    def shown(self, doc: dict, viewer_account_id) -> str:
        if self.funding(doc, viewer_account_id):
            return FUNDING_NAME
        other = self.counterparty(doc, viewer_account_id)
        return self.nicknames.get(other) or self.holders.get(other) or "Aegis customer"

    def searchable(self, doc: dict, viewer_account_id) -> list[str]:
        """Every name the viewer knows this counterparty by (nickname and holder's name)."""
        if self.funding(doc, viewer_account_id):
            return [FUNDING_NAME]
        other = self.counterparty(doc, viewer_account_id)
        return [name for name in (self.nicknames.get(other), self.holders.get(other)) if name]


@dataclass
class _Search:
    """One request's filters and the names they match against."""

    account_id: ObjectId
    filters: HistoryFilters
    names: _Names

    def keep(self, side: str, docs: list[dict]) -> list[dict]:
        docs = [d for d in docs if _history_shown(side, d)]
        if self.filters.text:
            self.names.learn(docs, self.account_id)
        return [d for d in docs if self.filters.matches(d, self.names.searchable(d, self.account_id))]


@dataclass
class HistoryPage(keyset.WindowPage):
    # When the scan budget ran out before the page filled: the instant it searched back to
    # (rows older than it were not examined; `older` continues from there).
    searched_to: datetime | None = None


@dataclass(frozen=True)
class HistoryCursor:
    """One position in the merged listing, applied to both sides, with each side's own window."""

    direction: str
    position: keyset.Position
    windows: tuple[timedelta, timedelta]  # (sent, received): their densities differ


def _history_queries(account_id: ObjectId, status: str = "") -> dict:
    # With a status: txn_from_status_created_id / txn_to_status_created_id; without:
    # txn_from_created_id / txn_to_created_id.
    only = {"status": status} if status else {}
    return {"sent": {"from_account_id": account_id, **only}, "received": {"to_account_id": account_id, **only}}


def _history_shown(side: str, doc: dict) -> bool:
    # Someone else's failed attempt to pay me is not mine to see.
    return side == "sent" or doc.get("status") == TransactionStatus.COMPLETED


def encode_history_cursor(cursor: HistoryCursor, *, account_id, scope: str | None = None) -> str:
    """Two signed keyset cursors (same position, one window each), joined by `~`."""
    return "~".join(
        keyset.encode_cursor(
            keyset.Cursor(cursor.direction, cursor.position, window),
            listing=f"history.{side}",
            scope=scope or str(account_id),
        )
        for side, window in zip(_HISTORY_SIDES, cursor.windows, strict=True)
    )


def decode_history_cursor(token, *, account_id, scope: str | None = None) -> HistoryCursor | None:
    """The cursor behind `token`; None for none; keyset.InvalidCursor for anything not ours."""
    if token in (None, ""):
        return None
    if not isinstance(token, str) or len(token) > 1024 or token.count("~") != 1:
        raise keyset.InvalidCursor()
    parts = [
        keyset.decode_cursor(part, listing=f"history.{side}", scope=scope or str(account_id))
        for side, part in zip(_HISTORY_SIDES, token.split("~"), strict=True)
    ]
    sent, received = parts
    if sent is None or received is None or (sent.direction, sent.position) != (received.direction, received.position):
        raise keyset.InvalidCursor()
    return HistoryCursor(sent.direction, sent.position, (sent.window, received.window))


class _Side:
    """What one side has handed over so far: its shown rows, and how far down (or up) it has read."""

    def __init__(self, name: str, page: keyset.WindowPage, width: timedelta, direction: str, search: _Search):
        self.name, self.rows, self.page, self.width = name, [], None, width
        self.direction, self.search = direction, search
        self.take(page)

    def take(self, page: keyset.WindowPage) -> None:
        self.page = page
        self.rows += self.search.keep(self.name, page.rows)
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


def _history_bounds(account, filters: HistoryFilters, now: datetime) -> tuple[datetime, datetime]:
    """(floor, now) of the windows: the account's opening, or the first IST day's midnight if
    later; and for a last day in the past, an end that puts the windows' ceiling (now +
    keyset.CLOCK_SKEW, read as `< the next millisecond`) just before the next day's midnight."""
    floor = account.created_at - keyset.CLOCK_SKEW  # nothing of an account predates its opening
    if filters.first_day:
        floor = max(floor, bank_day_start_of(filters.first_day))
    if filters.last_day:
        day_end = bank_day_start_of(filters.last_day + timedelta(days=1))
        now = min(now, day_end - keyset.CLOCK_SKEW - timedelta(milliseconds=1))
    return floor, now


def _history_read(account, cursor: HistoryCursor | None, limit: int, now: datetime, search: _Search) -> HistoryPage:
    """One merged page, newest first; `newer` / `older` are HistoryCursors (None at either end)."""
    txns = collection(Transaction)
    filters = search.filters
    queries = _history_queries(account.pk, filters.status)
    floor, now = _history_bounds(account, filters, now)
    # Amount and text filters keep few of the rows read: read more per query, within the budget.
    batch = max(limit, _SCAN_BATCH) if filters.scanned else limit
    top_ups = HISTORY_SCAN_BUDGET // batch - len(filters.sides()) if filters.scanned else _HISTORY_TOP_UPS
    first = keyset.first_window(
        rows_in_scope=max(1, int(account.ledger_seq) // 2), since=account.created_at, limit=batch, now=now
    )
    direction = cursor.direction if cursor else keyset.OLDER
    widths = dict(zip(_HISTORY_SIDES, cursor.windows if cursor else (first, first), strict=True))

    def read(name: str, side_cursor: keyset.Cursor | None, width: timedelta) -> keyset.WindowPage:
        return keyset.window_page(
            txns,
            queries[name],
            limit=batch,
            floor=floor,
            cursor=side_cursor,
            window=width,
            projection=INTERNAL_FIELDS,
            now=now,
        )

    if floor > now + keyset.CLOCK_SKEW or not filters.sides():  # nothing can match: read nothing
        return HistoryPage(rows=[], newer=None, older=None)
    sides = [
        _Side(
            name,
            read(name, keyset.Cursor(direction, cursor.position, widths[name]) if cursor else None, widths[name]),
            widths[name],
            direction,
            search,
        )
        for name in filters.sides()
    ]
    if direction == keyset.NEWER:
        at_top = all(s.page.newer is None for s in sides)  # window_page fell back to its newest page
        newer_rows = [r for s in sides for r in s.rows if keyset.Position.of(r).key() > cursor.position.key()]
        if at_top and len(newer_rows) <= limit:
            return _history_read(account, None, limit, now, search)  # walked back to the top: the newest page now

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
    for _ in range(top_ups):
        if len(rows) > limit or binding is None:
            break
        binding.take(read(binding.name, binding.more(), binding.width))
        rows, cut, binding = window_rows()
    more_beyond = len(rows) > limit or cut is not None
    shown = rows[:limit]
    # Where the next page in this direction starts: after the last row shown, or, on a page cut
    # short by the top-up bound, after the last row read (everything before it was read).
    onward = keyset.Position.of(shown[-1]) if len(rows) > limit or (shown and cut is None) else cut
    widths |= {s.name: s.width for s in sides}  # a side not read keeps the width it came with
    windows = tuple(widths[name] for name in _HISTORY_SIDES)
    if direction == keyset.NEWER:
        shown.reverse()
        newer = HistoryCursor(keyset.NEWER, onward, windows) if more_beyond and onward else None
        older_edge = keyset.Position.of(shown[-1]) if shown else cursor.position
        older = HistoryCursor(keyset.OLDER, older_edge, windows)
        return HistoryPage(rows=shown, newer=newer, older=older)
    older = HistoryCursor(keyset.OLDER, onward, windows) if more_beyond and onward else None
    newer_edge = keyset.Position.of(shown[0]) if shown else (cursor.position if cursor else None)
    newer = HistoryCursor(keyset.NEWER, newer_edge, windows) if cursor is not None and newer_edge else None
    # Cut short by the budget (or the top-ups): rows older than `cut` are not examined yet.
    searched_to = cut.created_at if cut is not None and len(rows) <= limit else None
    return HistoryPage(rows=shown, newer=newer, older=older, searched_to=searched_to)


def account_history(
    *,
    account: Account,
    cursor: str | None = None,
    page: int = 1,
    limit: int = HISTORY_PAGE_SIZE,
    now: datetime | None = None,
    filters: HistoryFilters | None = None,
    nicknames: dict | None = None,
) -> dict:
    """A customer's history, newest first: everything they sent (any status) and everything
    they received that completed. `cursor` (a Newer/Older link) wins over `page`; `?page=N`
    (old links) walks at most keyset.MAX_WALKED_PAGE pages, and a page past the end shows the
    last one. No total: nothing exact counts this listing (ledger_seq counts completed postings).

    `filters` narrow it (HistoryFilters; `nicknames`, {account _id: the viewer's payee
    nickname}, are searched as counterparty names). A filtered listing has no `?page=N` (its
    links are cursors, and walking N budgeted pages would be N budgets): page 1.

    Returns keyset.listing_page of transaction documents, with `searchedTo` (the instant the
    scan budget stopped at, or None). Raises keyset.InvalidCursor for a tampered, foreign or
    malformed cursor, or one made under other filters.
    """
    now = now or datetime.now(UTC)
    limit = max(1, min(int(limit), 50))
    filters = filters or HistoryFilters()
    search = _Search(account.pk, filters, _Names(nicknames))
    scope = filters.scope(account.pk)
    position = decode_history_cursor(cursor, account_id=account.pk, scope=scope)
    if position is not None:
        result = _history_read(account, position, limit, now, search)
    elif filters.active:
        result = _history_read(account, None, limit, now, search)
    else:
        last_full: list[keyset.WindowPage] = []

        def fetch(at):
            got = _history_read(account, at, limit, now, search)
            if got.rows:
                last_full[:] = [got]
            return got

        result = keyset.walk_to_page(fetch, max(1, min(int(page), keyset.MAX_WALKED_PAGE)))
        if not result.rows and last_full:  # a stale deep link: the last page, not an empty one
            result = last_full[0]

    def token(at: HistoryCursor | None) -> str | None:
        return encode_history_cursor(at, account_id=account.pk, scope=scope) if at else None

    answer = keyset.listing_page(result.rows, newer=token(result.newer), older=token(result.older), limit=limit)
    answer["searchedTo"] = getattr(result, "searched_to", None)
    return answer


def history_rows(*, account: Account, docs: list[dict], nicknames: dict | None = None) -> list[dict]:
    """The page's transactions as the history shows them: `transaction_row` with `counterparty`
    (as this customer may see it) and `balance_after` (their ledger entry's, completed rows only).

    Two reads of the page's counterparties (names_of_accounts) and one of its ledger entries by
    `transaction_id $in` (that index holds no account_id, and the embedded planner scans for a
    filter field its index lacks: our entry is picked from each pair here). About 2 × the page.
    """
    names = _Names(nicknames)
    names.learn(docs, account.pk)
    completed = [d["_id"] for d in docs if d.get("status") == TransactionStatus.COMPLETED]
    balances = {}
    if completed:
        entries = collection(LedgerEntry).find(
            {"transaction_id": {"$in": completed}}, {"account_id": 1, "transaction_id": 1, "balance_after": 1}
        )
        balances = {e["transaction_id"]: int(e["balance_after"]) for e in entries if e["account_id"] == account.pk}
    rows = []
    for doc in docs:
        row = transaction_row(doc, viewer_account_id=account.pk)
        row["counterparty"] = names.shown(doc, account.pk)
        row["is_payee"] = names.counterparty(doc, account.pk) in names.nicknames
        row["balance_after"] = balances.get(doc["_id"])
        # A failure counts one attempt (retry_count + 1 each); a transfer that went on to complete
        # (or is in flight) is one attempt more than its failures.
        failed = doc.get("status") == TransactionStatus.FAILED
        row["attempts"] = row["retry_count"] + (0 if failed else 1) if row["direction"] == "OUT" else 0
        rows.append(row)
    return rows
