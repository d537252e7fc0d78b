"""Reads behind statements and receipts: the period, the summary (opening and closing balances
from `ledger.selectors.balance_as_of`), the entries with their counterparties, one receipt.

Every read is bounded: the summary is two as-of searches, the entries an exact seq range read in
chunks (a statement of any length holds one chunk), a receipt one transaction, its few audit
entries and the viewer's one ledger entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from accounts.models import Account, User
from accounts.selectors import FUNDING_NAME, account_for_user, names_of_accounts
from aegis.clock import bank_day_start_of, bank_time, now_ms, parse_bank_date
from aegis.errors import AegisError, NotFound, ValidationFailed
from aegis.ids import parse_object_id
from aegis.mongo import collection
from ledger.models import AuditAction, AuditLog, EntryType, LedgerEntry
from ledger.selectors import BalanceAt, balance_as_of, entries_between
from transfers.models import INTERNAL_FIELDS, Transaction, TransactionKind, TransactionStatus

MAX_STATEMENT_DAYS = 366  # a year (a financial year, a visa application's twelve months), leap day included
PDF_MAX_ENTRIES = 10_000  # about 200 pages: past that a person wants the CSV
_NAME_CACHE_LIMIT = 5_000  # counterparties remembered while a statement streams


class StatementTooLong(AegisError):
    code = "statement_too_long"
    status = 400
    message = (
        "This period has {entries} entries, more than a PDF statement holds ({limit}). "
        "Download it as CSV, or choose a shorter period."
    )


@dataclass(frozen=True)
class Period:
    """IST calendar days first_day..last_day, both included: [start, end) as UTC instants."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime


def statement_period(first, last, *, today: date | None = None) -> Period:
    """The period a person asked for (the `from` and `to` of a query string or form), or a
    ValidationFailed naming the field: a malformed date, `to` before `from`, more than
    MAX_STATEMENT_DAYS, or a day after today (a statement of days that have not ended yet would
    change after it was handed over; today itself is allowed and says when it was generated)."""
    first_day = parse_bank_date(first, field="from")
    last_day = parse_bank_date(last, field="to")
    today = today or bank_time(now_ms()).date()
    if last_day < first_day:
        raise ValidationFailed("to must be on or after from.", field="to")
    if last_day > today:
        raise ValidationFailed(f"to cannot be after today ({today.isoformat()}).", field="to")
    if (last_day - first_day).days + 1 > MAX_STATEMENT_DAYS:
        raise ValidationFailed(
            f"A statement covers at most {MAX_STATEMENT_DAYS} days; choose a shorter period.", field="to"
        )
    start, end = bank_day_start_of(first_day), bank_day_start_of(last_day + timedelta(days=1))
    return Period(first_day=first_day, last_day=last_day, start=start, end=end)


@dataclass(frozen=True)
class StatementSummary:
    """What heads a statement. opening.balance + credits - debits == closing.balance, and the
    statement's entries are exactly seqs opening.seq+1 .. closing.seq (`entries` of them)."""

    account: Account
    holder_name: str
    holder_email: str
    period: Period
    opening: BalanceAt  # after the last entry before the period
    closing: BalanceAt  # after the last entry in it
    entries: int
    generated_at: datetime


def statement_summary(*, account: Account, period: Period, now: datetime | None = None) -> StatementSummary:
    opening = balance_as_of(account=account, instant=period.start, before=True)
    closing = balance_as_of(account=account, instant=period.end, before=True)
    holder = account.user
    return StatementSummary(
        account=account,
        holder_name=holder.name or holder.email,
        holder_email=holder.email,
        period=period,
        opening=opening,
        closing=closing,
        entries=closing.seq - opening.seq,
        generated_at=now or now_ms(),
    )


_TXN_FIELDS = {"note": 1, "kind": 1, "from_account_id": 1, "to_account_id": 1}


# A transaction is created a moment before its entries are stamped (its claim, then the money
# transaction); other hosts' clocks may differ a little. Outside these margins (a transfer retried
# days after it first failed) it is read by id.
_CREATED_BEFORE_ENTRY = timedelta(minutes=1)
_CLOCK_MARGIN = timedelta(minutes=1)


def _transactions_of_chunk(account_id, chunk: list[dict]) -> dict:
    """{_id: transaction} for a chunk of the account's entries (oldest first).

    Read as the account's own transactions in the chunk's time window, on its (from_account,
    created_at, _id) and (to_account, created_at, _id) indexes: a range about the size of the
    chunk. An `_id $in` of 500 ids costs the embedded server about a millisecond an id; only
    what the window missed is read that way.
    """
    if not chunk:
        return {}
    wanted = {e["transaction_id"] for e in chunk}
    window = {"$gte": chunk[0]["created_at"] - _CREATED_BEFORE_ENTRY, "$lt": chunk[-1]["created_at"] + _CLOCK_MARGIN}
    sides = {"from_account_id" if e["type"] == EntryType.DEBIT else "to_account_id" for e in chunk}
    found = {}
    for side in sorted(sides):
        for txn in collection(Transaction).find({side: account_id, "created_at": window}, _TXN_FIELDS):
            if txn["_id"] in wanted:
                found[txn["_id"]] = txn
    missing = list(wanted - found.keys())
    if missing:
        found.update({t["_id"]: t for t in collection(Transaction).find({"_id": {"$in": missing}}, _TXN_FIELDS)})
    return found


def statement_rows(summary: StatementSummary, *, full_names: bool = False) -> Iterator[dict]:
    """The statement's entries, oldest first, each with its transaction's note and counterparty.

    Read a chunk at a time (entries, then their transactions and unseen counterparties by id),
    so memory holds one chunk and the names seen so far (at most _NAME_CACHE_LIMIT of them).
    """
    names: dict = {}
    chunks = entries_between(account=summary.account, after_seq=summary.opening.seq, through_seq=summary.closing.seq)
    for chunk in chunks:
        txns = _transactions_of_chunk(summary.account.pk, chunk)
        counterparties = {}
        for entry in chunk:
            txn = txns.get(entry["transaction_id"], {})
            outgoing = entry["type"] == EntryType.DEBIT
            counterparties[entry["_id"]] = txn.get("to_account_id" if outgoing else "from_account_id")
        unseen = {c for c in counterparties.values() if c is not None and c not in names}
        if unseen:
            if len(names) > _NAME_CACHE_LIMIT:
                names.clear()
            names.update(names_of_accounts(unseen, full=full_names))
        for entry in chunk:
            txn = txns.get(entry["transaction_id"], {})
            # Money in from the bank itself; the system account's own side names whom it funded.
            funding = txn.get("kind") == TransactionKind.SYSTEM_FUNDING and entry["type"] == EntryType.CREDIT
            counterparty = counterparties[entry["_id"]]
            yield {
                "seq": int(entry["seq"]),
                "created_at": entry["created_at"],
                "direction": "OUT" if entry["type"] == EntryType.DEBIT else "IN",
                "amount": int(entry["amount"]),
                "balance_after": int(entry["balance_after"]),
                "transaction_id": str(entry["transaction_id"]),
                "note": txn.get("note", ""),
                "kind": txn.get("kind", ""),
                "counterparty_account": "" if funding or counterparty is None else str(counterparty),
                "counterparty_name": FUNDING_NAME if funding else names.get(counterparty, ""),
            }


# --- receipts ---------------------------------------------------------------------------------


def receipt_for(*, viewer: User, transaction_id) -> dict:
    """One transaction as its receipt shows it to `viewer`, or NotFound (404).

    Staff see any transaction. A customer sees what they sent (any status, with its attempts and
    failure) and what they received once it COMPLETED (never the sender's failures): the same
    rule as their history, so a receipt reveals nothing the history does not. A malformed,
    unknown or foreign id is the same NotFound.
    """
    oid = parse_object_id(transaction_id)
    doc = collection(Transaction).find_one({"_id": oid}, INTERNAL_FIELDS) if oid else None
    if doc is None:
        raise NotFound(thing="Transaction")
    staff = bool(getattr(viewer, "is_admin", False))
    side, account = None, None
    if not staff:
        account = account_for_user(user=viewer) if viewer.is_authenticated else None
        if account is not None and doc["from_account_id"] == account.pk:
            side = "OUT"
        elif (
            account is not None and doc["to_account_id"] == account.pk and doc["status"] == TransactionStatus.COMPLETED
        ):
            side = "IN"
        else:
            raise NotFound(thing="Transaction")
    names = names_of_accounts({doc["from_account_id"], doc["to_account_id"]}, full=True)
    masked = names_of_accounts({doc["from_account_id"], doc["to_account_id"]}, full=False) if not staff else names

    def party(account_id, own: bool) -> dict:
        if doc.get("kind") == TransactionKind.SYSTEM_FUNDING and account_id == doc["from_account_id"]:
            return {"account": "", "name": FUNDING_NAME}
        return {"account": str(account_id), "name": (names if own or staff else masked).get(account_id, "")}

    sender_view = staff or side == "OUT"
    entry = None
    if account is not None and doc["status"] == TransactionStatus.COMPLETED:
        # By transaction only (its index holds no account_id, and the embedded planner scans the
        # collection for a filter field its index lacks): the pair's two entries, then ours.
        pair = collection(LedgerEntry).find({"transaction_id": oid}, {"account_id": 1, "balance_after": 1})
        entry = next((e for e in pair if e["account_id"] == account.pk), None)
    return {
        "id": str(oid),
        "kind": doc.get("kind", ""),
        "status": doc.get("status", ""),
        "amount": int(doc.get("amount", 0)),
        "currency": doc.get("currency", "INR"),
        "note": doc.get("note", ""),
        "created_at": doc.get("created_at"),
        "completed_at": doc.get("completed_at"),
        "failure_reason": doc.get("failure_reason", "") if sender_view else "",
        "retry_count": int(doc.get("retry_count", 0)) if sender_view else 0,
        "from": party(doc["from_account_id"], own=side == "OUT"),
        "to": party(doc["to_account_id"], own=side == "IN"),
        "attempts": _attempts(oid, staff=staff) if sender_view else [],
        "viewer_side": side,
        "balance_after": int(entry["balance_after"]) if entry else None,
        # Reversals and their originals, linked both ways (disputes/, transfers.services.reversal_execute).
        "reverses": str(doc.get("reverses_id") or ""),
        "reversed_by": [str(r) for r in doc.get("reversed_by") or []],
        "reversed_amount": int(doc.get("reversed_amount") or 0),
    }


ATTEMPT_ACTIONS = {
    AuditAction.TRANSFER_SUCCESS,
    AuditAction.TRANSFER_FAILED,
    AuditAction.SYSTEM_TRANSFER_SUCCESS,
    AuditAction.SYSTEM_TRANSFER_FAILED,
    AuditAction.TRANSFER_RECOVERED,
    AuditAction.REVERSAL_COMPLETED,
    AuditAction.REVERSAL_FAILED,
}


def _attempts(oid, *, staff: bool) -> list[dict]:
    """Each settled attempt (completed, failed, recovered) from the audit log, oldest first: a
    handful of entries on the (transaction_id, created_at) index. Staff also see the internal
    reason (why a recipient refused); a customer sees the outcome, and the failure on the receipt."""
    # By transaction alone (the index has no action), then only the engine's settlements: the
    # dispute and maker-checker steps recorded against the same transaction are not attempts.
    fields = {"created_at": 1, "status": 1, "details": 1, "action": 1}
    rows = collection(AuditLog).find({"transaction_id": str(oid)}, fields)
    attempts = sorted((r for r in rows if r.get("action") in ATTEMPT_ACTIONS), key=lambda row: row["created_at"])
    return [
        {
            "at": row["created_at"],
            "status": row.get("status", ""),
            "reason": str((row.get("details") or {}).get("reason", "")) if staff else "",
        }
        for row in attempts
    ]
