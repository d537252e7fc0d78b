"""Transfer statistics kept as small rollup documents, exact as the outbox delivers each event.

Why: the staff statistics and /metrics used to group the whole `transactions` collection on
every view or scrape. Now one writer, the outbox handler `rollup_apply` (registered as
"rollups" in settings.AEGIS_OUTBOX_HANDLERS), folds each `transaction.completed` / `transaction.failed`
event into `stats_rollups` with `$inc`. The dispatcher runs a handler in one transaction with
its delivery row (unique per event and handler), so each event is applied exactly once, even
across crashes and several dispatchers; nothing is added to the money transaction itself.

What is counted (the same figures the old full scans gave):
- scope "total": transactions COMPLETED and FAILED (every kind); completed volume (TRANSFER only);
- scope "day" (the IST day of the transaction's `created_at`, TRANSFER only): completed, failed,
  completed volume.
A record that failed and is then retried is counted once: the engine keeps `counted_status` on
the record (FAILED once a FAILED settlement has been counted) and every settlement event carries
it as `previousStatus`; a completion whose previousStatus is FAILED moves one from failed to
completed, and a repeated failure changes nothing. PROCESSING is never rolled up: it is counted
live (the txn_status_lease index range is the work in flight).

Concurrent dispatchers would all write the same few documents; so each figure is split into
SHARDS documents per (scope, day), the shard chosen by the transaction id, and readers sum them.

The figures are as of the last delivered event; `rollups_rebuild()` recomputes them from the
transactions (history from before rollups existed, bulk-built banks); `rollups_recount()` gives
the same shape from the transactions directly, for checks. See docs/statistics.md.
"""

from __future__ import annotations

import logging
import zlib
from datetime import UTC, date, datetime, timedelta

from bson import Int64
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure

from aegis.clock import bank_time
from aegis.mongo import collection, run_transaction
from events.services import outbox_mark_applied
from transfers.models import StatsRollup, Transaction, TransactionKind, TransactionStatus

logger = logging.getLogger("aegis.rollups")

SHARDS = 8
HANDLER_NAME = "rollups"  # its name in settings.AEGIS_OUTBOX_HANDLERS
TOTAL, DAY = "total", "day"
EVENT_STATUS = {"transaction.completed": TransactionStatus.COMPLETED, "transaction.failed": TransactionStatus.FAILED}
# Fields of the rollup-ready payload (transfers.services._event_append); older events lack them.
REQUIRED = ("transactionId", "amount", "status", "kind", "createdAt", "previousStatus")
WRITE_CONFLICT = 112


def shard_of(transaction_id: str) -> int:
    return zlib.crc32(str(transaction_id).encode()) % SHARDS


def ist_day(moment: datetime) -> str:
    return bank_time(moment).date().isoformat()


def _zero() -> dict:
    return {"completed": 0, "failed": 0, "volume": 0}


# --- the writer ---------------------------------------------------------------------------------


class OldEvent(ValueError):
    """An event written before rollups existed: it cannot say what it changes."""


def event_delta(event: dict) -> dict[tuple[str, str], dict] | None:
    """{(scope, day): {completed, failed, volume}} that one event adds; None for other event types."""
    status = EVENT_STATUS.get(event.get("event_type"))
    if status is None:
        return None
    payload = event.get("payload") or {}
    missing = [name for name in REQUIRED if name not in payload]
    if missing:
        raise OldEvent(f"no {', '.join(missing)} in its payload")
    try:
        amount = int(payload["amount"])
        created = datetime.fromisoformat(str(payload["createdAt"]))
    except (TypeError, ValueError) as error:
        raise OldEvent(f"unreadable payload: {error}") from None
    previous = payload["previousStatus"] or ""
    delta = _zero()
    if status == TransactionStatus.COMPLETED:
        delta["completed"] = 1
        if previous == TransactionStatus.FAILED:
            delta["failed"] = -1
        if payload["kind"] == TransactionKind.TRANSFER:
            delta["volume"] = amount
    elif previous != TransactionStatus.FAILED:
        delta["failed"] = 1
    # A failure after a counted failure changes nothing (the event is still recorded as applied).
    changes = {(TOTAL, ""): delta}
    if payload["kind"] == TransactionKind.TRANSFER:  # the daily series is customer transfers only
        changes[(DAY, ist_day(created))] = dict(delta)
    return changes


def _transient(error: Exception) -> OperationFailure:
    # Should an upsert ever be refused by a unique index (a race of first writers), retry the
    # transaction: a DuplicateKeyError itself would read as "delivered before" to the dispatcher.
    return OperationFailure(
        f"rollup upsert race: {error}", code=WRITE_CONFLICT, details={"errorLabels": ["TransientTransactionError"]}
    )


def _delta_or_skip(event: dict) -> dict[tuple[str, str], dict] | None:
    try:
        return event_delta(event)
    except OldEvent as why:
        logger.warning(
            "rollups: skipped event %s (%s); `manage.py rollups_rebuild` counts its transaction",
            event.get("_id"),
            why,
            extra={"event_id": str(event.get("_id")), "reason": str(why)},
        )
        return None


def rollup_apply_batch(events: list[dict], *, session) -> None:
    """`rollup_apply` for a dispatcher's batch: the deltas folded per (scope, day), one bulk write.

    The whole batch goes to one shard (that of its first transaction): readers sum the shards, so
    any shard is exact, and two dispatchers' batches then collide on a document 1 time in SHARDS.
    """
    folded: dict[tuple[str, str], dict] = {}
    shard = None
    for event in events:
        changes = _delta_or_skip(event)
        if not changes:
            continue
        if shard is None:
            shard = shard_of(event["payload"]["transactionId"])
        for key, delta in changes.items():
            total = folded.setdefault(key, _zero())
            for name, value in delta.items():
                total[name] += value
    now = datetime.now(UTC)
    ops = [
        UpdateOne(
            {"scope": scope, "day": day, "shard": shard},
            {"$inc": {name: Int64(value) for name, value in delta.items() if value}, "$set": {"updated_at": now}},
            upsert=True,
        )
        for (scope, day), delta in folded.items()
        if any(delta.values())  # e.g. a failure after a counted failure: nothing to write, nothing to conflict on
    ]
    if not ops:
        return
    try:
        collection(StatsRollup).bulk_write(ops, ordered=True, session=session)
    except BulkWriteError as error:
        if any(e.get("code") == 11000 for e in error.details.get("writeErrors", [])):
            raise _transient(error) from error
        raise


def rollup_apply(event: dict, *, session) -> None:
    """Outbox handler: fold one transaction event into the rollups (through `session` only)."""
    rollup_apply_batch([event], session=session)


rollup_apply.batch = rollup_apply_batch  # the dispatcher's batch transaction calls this


# --- the reads ------------------------------------------------------------------------------------


def _sum(docs) -> tuple[dict[str, dict], datetime | None]:
    by_day: dict[str, dict] = {}
    latest = None
    for doc in docs:
        figures = by_day.setdefault(doc["day"], _zero())
        for name in figures:
            figures[name] += int(doc.get(name) or 0)
        stamp = doc.get("updated_at")
        if stamp is not None and (latest is None or stamp > latest):
            latest = stamp
    return by_day, latest


def rollup_totals() -> dict:
    """{completed, failed, volume, asOf} over all time: the SHARDS "total" documents."""
    by_day, latest = _sum(collection(StatsRollup).find({"scope": TOTAL, "day": ""}))
    return {**by_day.get("", _zero()), "asOf": latest}


def rollup_days(first: date, last: date) -> dict[str, dict]:
    """IST day -> {completed, failed, volume} for first..last: at most SHARDS documents per day."""
    # `$lt` the day after, not `$lte` last: the embedded server's range scan of a compound index
    # drops the rows equal to an inclusive upper bound on a field that is not the index's last.
    query = {"scope": DAY, "day": {"$gte": first.isoformat(), "$lt": (last + timedelta(days=1)).isoformat()}}
    return _sum(collection(StatsRollup).find(query))[0]


def live_counts() -> dict[str, int]:
    """Records not settled yet, counted live: their index range is the work in flight only."""
    txns = collection(Transaction)
    return {
        status.value: txns.count_documents({"status": status})
        for status in (TransactionStatus.INITIATED, TransactionStatus.PROCESSING)
    }


def transfer_counts(totals: dict | None = None) -> dict[str, int]:
    """Transactions by status: settled ones from the rollups (`totals`, read if not given), in-flight ones live."""
    totals = totals or rollup_totals()
    live = live_counts()
    return {
        TransactionStatus.INITIATED.value: live[TransactionStatus.INITIATED],
        TransactionStatus.PROCESSING.value: live[TransactionStatus.PROCESSING],
        TransactionStatus.COMPLETED.value: totals["completed"],
        TransactionStatus.FAILED.value: totals["failed"],
    }


def rollups_read() -> dict:
    """Everything the rollups hold, summed over shards (every day: for checks, not for pages)."""
    by_day, _ = _sum(collection(StatsRollup).find({"scope": DAY}))
    totals = rollup_totals()
    return {
        "byStatus": {TransactionStatus.COMPLETED: totals["completed"], TransactionStatus.FAILED: totals["failed"]},
        "completedVolume": totals["volume"],
        "daily": {day: figures for day, figures in sorted(by_day.items()) if any(figures.values())},
    }


# --- recount and rebuild (offline maintenance) ----------------------------------------------------

# Windows over `created_at`, sized to about this many records each: every query is a range
# bounded at both ends, so memory stays flat however long the history is.
WINDOW_TARGET = 2_000
FIRST_WINDOW = timedelta(seconds=1)
_PROJECTION = {"status": 1, "kind": 1, "amount": 1, "created_at": 1, "counted_status": 1}
_ID_MIN = datetime(1970, 1, 1, tzinfo=UTC)
_ID_MAX = datetime(2106, 2, 7, tzinfo=UTC)  # past any instant a record can carry


def _windows(now: datetime):
    """(low, high) `created_at` bounds covering every possible instant: back from now, then forward."""
    for start, stop, step in ((now, _ID_MIN, -1), (now, _ID_MAX, 1)):
        edge, width = start, FIRST_WINDOW
        while (edge > stop) if step < 0 else (edge < stop):
            other = max(edge - width, stop) if step < 0 else min(edge + width, stop)
            low, high = (other, edge) if step < 0 else (edge, other)
            seen = yield low, high
            edge = other
            # Few records: widen (empty decades take a few dozen doublings); many: narrow.
            factor = min(2.0, max(0.25, WINDOW_TARGET / max(seen or 0, 1)))
            width = max(width * factor, FIRST_WINDOW)


def _counted_as(txn: dict) -> str:
    """What the rollups hold for a record once all its events are applied."""
    if txn["status"] in (TransactionStatus.COMPLETED, TransactionStatus.FAILED):
        return txn["status"]
    # A retry in flight is still counted as the failure it retries (its next event moves it).
    return TransactionStatus.FAILED if txn.get("counted_status") == TransactionStatus.FAILED else ""


def rollups_recount(*, now: datetime | None = None) -> dict:
    """The rollups' figures (same shape as `rollups_read`) computed from the transactions."""
    totals = {TransactionStatus.COMPLETED: 0, TransactionStatus.FAILED: 0}
    volume = 0
    daily: dict[str, dict] = {}
    txns = collection(Transaction)
    windows = _windows(now or datetime.now(UTC))
    seen = None
    try:
        while True:
            low, high = windows.send(seen)
            seen = 0
            # A created_at range on txn_created_id: an `_id` range (or any hint) is a whole-collection
            # walk per window on the embedded server.
            for txn in txns.find({"created_at": {"$gte": low, "$lt": high}}, _PROJECTION):
                seen += 1
                counted = _counted_as(txn)
                if not counted:
                    continue
                totals[counted] += 1
                transfer = txn.get("kind", TransactionKind.TRANSFER) == TransactionKind.TRANSFER
                done = counted == TransactionStatus.COMPLETED
                if done and transfer:
                    volume += int(txn["amount"])
                if transfer:
                    day = daily.setdefault(ist_day(txn["created_at"]), _zero())
                    day["completed" if done else "failed"] += 1
                    day["volume"] += int(txn["amount"]) if done else 0
    except StopIteration:
        pass
    return {"byStatus": totals, "completedVolume": volume, "daily": dict(sorted(daily.items()))}


def rollups_rebuild(*, now: datetime | None = None) -> dict:
    """Recompute the rollups from the transactions and replace them. Offline maintenance.

    Run it with no dispatcher running and no transfers in flight (docs/statistics.md): the
    undelivered transaction events are first recorded as applied to the rollups (the recount
    already includes them), then the recount replaces the rollups in one transaction.
    Returns the recount and how many events were marked.
    """
    # The undelivered events are already in the recount: recorded as applied, never run again.
    marked = outbox_mark_applied(handler_name=HANDLER_NAME, event_types=list(EVENT_STATUS), by="rollups_rebuild")
    figures = rollups_recount(now=now)
    stamp = datetime.now(UTC)
    docs = [
        {
            "scope": TOTAL,
            "day": "",
            "shard": 0,
            "completed": Int64(figures["byStatus"][TransactionStatus.COMPLETED]),
            "failed": Int64(figures["byStatus"][TransactionStatus.FAILED]),
            "volume": Int64(figures["completedVolume"]),
            "updated_at": stamp,
        }
    ] + [
        {"scope": DAY, "day": day, "shard": 0, **{k: Int64(v) for k, v in f.items()}, "updated_at": stamp}
        for day, f in figures["daily"].items()
    ]
    rollups = collection(StatsRollup)

    def replace(session):
        rollups.delete_many({}, session=session)
        rollups.insert_many(docs, session=session)

    run_transaction(replace, deadline_seconds=60)
    logger.info("rollups rebuilt", extra={"days": len(figures["daily"]), "events_marked": marked})
    return {**figures, "eventsMarked": marked}
