"""Writes to the outbox: appending an event inside the caller's transaction, delivery rows, requeue."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.errors import BulkWriteError

from aegis.ids import parse_object_id
from aegis.mongo import collection, run_transaction
from aegis.tracing import current_trace_context
from events.models import OutboxDelivery, OutboxEvent, OutboxStatus
from ledger.models import AuditAction
from ledger.services import audit_append

CLAIM_FIELDS = {"claimed_by": "", "claim_token": "", "lease_until": ""}
# Requeueing every parked event after an outage touches thousands of rows in one transaction.
REQUEUE_DEADLINE_SECONDS = 60.0


def outbox_append(session, *, event_type: str, aggregate_id, payload: dict, now: datetime) -> None:
    """Append one event in the transaction of the change it describes (`session`), so it exists
    iff that change committed; `aggregate_id` (an account) is what delivery is ordered by.

    `trace_context` is the W3C context of the span that wrote it ({} with tracing off): the
    dispatcher continues that trace when it delivers the event (docs/tracing.md)."""
    doc = {
        "event_type": event_type,
        "aggregate_id": str(aggregate_id),
        "payload": payload,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "delivered_at": None,
        "trace_context": current_trace_context(),
    }
    collection(OutboxEvent).insert_one(doc, session=session)


def delivery_id(event_id, handler_name: str) -> str:
    """The `_id` of an (event, handler) delivery row: a batch finds the rows it already has by `_id`
    (the unique {event_id, handler} index is partial on the embedded server, which never plans it)."""
    return f"{event_id}:{handler_name}"


def delivery_row(event_id, handler_name: str, *, dispatcher: str, now: datetime, **extra) -> dict:
    return {
        "_id": delivery_id(event_id, handler_name),
        "event_id": str(event_id),
        "handler": handler_name,
        "dispatcher": dispatcher,
        **extra,
        "delivered_at": now,
    }


def outbox_mark_applied(*, handler_name: str, event_types: list[str], by: str) -> int:
    """Record the backlog's events of `event_types` as delivered to `handler_name` without running
    it (its state was rebuilt from the source and already includes them); returns how many."""
    events = collection(OutboxEvent)
    marked = 0
    for status in (OutboxStatus.PENDING, OutboxStatus.PARKED):  # the backlog, never the history
        query = {"status": status, "event_type": {"$in": event_types}}
        now = datetime.now(UTC)
        rows = [delivery_row(e["_id"], handler_name, dispatcher=by, now=now) for e in events.find(query, {"_id": 1})]
        if not rows:
            continue
        try:
            marked += len(collection(OutboxDelivery).insert_many(rows, ordered=False).inserted_ids)
        except BulkWriteError as error:  # already delivered to that handler: a duplicate is fine
            if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
                raise
            marked += error.details.get("nInserted", 0)
    return marked


def outbox_requeue(*, event_id: str | None = None, actor=None) -> int:
    """Put a parked event (or, with no id, every parked event) back in the queue with fresh attempts.

    Audit-logged as OUTBOX_REQUEUED, in the same transaction, with who asked (`actor`, a staff
    user; none from the command line) and how many events went back.
    """
    query: dict = {"status": OutboxStatus.PARKED}
    if event_id is not None:
        query["_id"] = parse_object_id(event_id)
        if query["_id"] is None:
            return 0
    who = str(actor.pk) if actor is not None else ""

    def write(session) -> int:
        requeued = (
            collection(OutboxEvent)
            .update_many(
                query,
                {
                    "$set": {"status": OutboxStatus.PENDING, "attempts": 0},
                    "$unset": {"parked_at": "", "next_attempt_at": "", **CLAIM_FIELDS},
                },
                session=session,
            )
            .modified_count
        )
        audit_append(
            session,
            action=AuditAction.OUTBOX_REQUEUED,
            status="SUCCESS",
            user_id=who,
            actor_id=who,
            details={"event": event_id or "all", "requeued": requeued},
        )
        return requeued

    return run_transaction(write, deadline_seconds=REQUEUE_DEADLINE_SECONDS)
