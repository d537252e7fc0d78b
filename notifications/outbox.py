"""The outbox dispatcher: delivers committed events to handlers, at least once, in order per aggregate.

Events are rows of `outbox_events` (`transfers.models.OutboxEvent`), written in the same MongoDB
transaction as the change they describe (DESIGN §4 property 8), so an event exists iff its change
committed. A dispatcher (`manage.py dispatch_outbox`) delivers them:

- **Claim.** An event is taken by one atomic `find_one_and_update` on
  `{status: PENDING, lease free, retry due}` that sets `claimed_by` and `lease_until`. Two
  dispatchers can never hold the same event; a claim whose holder died runs out after
  `AEGIS_OUTBOX_LEASE_SECONDS` and is taken over.
- **Order per aggregate** (the account in `aggregate_id`). Pending events are read oldest first
  (`created_at`, `_id`); only the oldest pending event of an aggregate may be claimed, so the next
  one is claimable only after the previous one is DELIVERED or PARKED. A failing event blocks its
  aggregate (head of line) until it is delivered or parked.
- **Idempotent handlers.** Each handler runs in its own transaction together with a row in
  `outbox_deliveries` (unique `{event_id, handler}`): a redelivery after a crash or a lost lease
  finds that row and skips the handler. A handler that only writes through the given session is
  therefore applied exactly once; one with outside effects must dedupe by event id itself.
- **Retries and parking.** A handler error counts one attempt and schedules a retry with
  exponential backoff; after `AEGIS_OUTBOX_MAX_ATTEMPTS` (5) the event is PARKED with its last
  error for an operator (`manage.py dispatch_outbox --parked`, `--requeue ID`).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from aegis.mongo import collection, run_transaction
from notifications import conf
from notifications.models import DispatcherHeartbeat, OutboxDelivery
from transfers.models import OutboxEvent, OutboxStatus

logger = logging.getLogger("aegis.outbox")

Handler = Callable[..., None]  # handler(event: dict, *, session) -> None
HANDLER_DEADLINE_SECONDS = 10.0


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def outbox_event_document(*, event_type: str, aggregate_id: str, payload: dict, now: datetime) -> dict:
    """An outbox row, the same shape the transfer engine writes; insert it inside your transaction."""
    return {
        "event_type": event_type,
        "aggregate_id": str(aggregate_id),
        "payload": payload,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "delivered_at": None,
    }


def _backoff(attempts: int) -> float:
    base = conf.number("AEGIS_OUTBOX_BACKOFF_SECONDS")
    delay = min(conf.number("AEGIS_OUTBOX_BACKOFF_MAX_SECONDS"), base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)  # jitter: retries of many events spread out


def _test_pause_after() -> int:
    """Crash tests freeze a dispatcher after N delivered events (handlers committed, event not yet
    marked DELIVERED: the most awkward moment to die). Inert unless the variable is set."""
    try:
        return int(os.environ.get("AEGIS_TEST_OUTBOX_PAUSE_AFTER", "0"))
    except ValueError:
        return 0


class Dispatcher:
    """One dispatcher; several may run at once (in any processes) on the same database."""

    def __init__(self, *, handlers: dict[str, Handler] | None = None, name: str | None = None):
        if handlers is None:
            from notifications.handlers import registered_handlers

            handlers = registered_handlers()
        self.handlers = handlers
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.delivered = 0
        self._pause_after = _test_pause_after()
        self._last_beat = 0.0

    # --- one pass ---------------------------------------------------------------------------

    def run_once(self) -> dict[str, int]:
        """Deliver what is deliverable now; returns counts for this pass."""
        counts = {"delivered": 0, "retried": 0, "parked": 0}
        pending = (
            collection(OutboxEvent)
            .find({"status": OutboxStatus.PENDING})
            .sort([("created_at", 1), ("_id", 1)])
            .limit(conf.integer("AEGIS_OUTBOX_BATCH"))
        )
        queues: dict[str, list[dict]] = {}
        for event in pending:  # the first one seen per aggregate is its oldest pending event
            queues.setdefault(event["aggregate_id"], []).append(event)
        for events in queues.values():
            for event in events:
                outcome = self._process(event)
                if outcome is None:
                    break  # not ours (claimed elsewhere, or a retry not yet due): keep the order
                counts[outcome] += 1
                if outcome != "delivered":
                    break  # head of line: later events of this aggregate wait for this one
        return counts

    def _claim(self, event: dict) -> dict | None:
        now = _now()
        if event.get("next_attempt_at") and event["next_attempt_at"] > now:
            return None
        if event.get("claimed_by") and event.get("lease_until") and event["lease_until"] > now:
            return None
        return collection(OutboxEvent).find_one_and_update(
            {
                "_id": event["_id"],
                "status": OutboxStatus.PENDING,
                "$and": [
                    {"$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]},
                    {"$or": [{"next_attempt_at": None}, {"next_attempt_at": {"$lte": now}}]},
                ],
            },
            {
                "$set": {
                    "claimed_by": self.name,
                    "lease_until": now + timedelta(seconds=conf.number("AEGIS_OUTBOX_LEASE_SECONDS")),
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    def _process(self, event: dict) -> str | None:
        claimed = self._claim(event)
        if claimed is None:
            return None
        for handler_name, handler in self.handlers.items():
            try:
                self._deliver(claimed, handler_name, handler)
            except Exception as error:  # a handler's failure is the event's failure, never the loop's
                return self._record_failure(claimed, handler_name, error)
        self.delivered += 1
        if self._pause_after and self.delivered == self._pause_after:
            print(f"PAUSED after {self.delivered} deliveries", flush=True)
            time.sleep(3600)
        now = _now()
        collection(OutboxEvent).update_one(
            {"_id": claimed["_id"], "claimed_by": self.name},
            {
                "$set": {"status": OutboxStatus.DELIVERED, "delivered_at": now},
                "$unset": {"claimed_by": "", "lease_until": "", "next_attempt_at": ""},
            },
        )
        return "delivered"

    def _deliver(self, event: dict, handler_name: str, handler: Handler) -> bool:
        """Run one handler for one event, once: its writes and the delivery row commit together."""
        event_id = str(event["_id"])
        deliveries = collection(OutboxDelivery)

        def body(session) -> bool:
            # The delivery row first: if it exists (a crash or a lost lease came in between), the
            # unique index refuses it and the handler does not run again.
            deliveries.insert_one(
                {"event_id": event_id, "handler": handler_name, "dispatcher": self.name, "delivered_at": _now()},
                session=session,
            )
            handler(event, session=session)
            return True

        try:
            return run_transaction(body, deadline_seconds=HANDLER_DEADLINE_SECONDS)
        except DuplicateKeyError:
            return False  # delivered before

    def _record_failure(self, event: dict, handler_name: str, error: Exception) -> str:
        attempts = int(event.get("attempts") or 0) + 1
        now = _now()
        last_error = f"{handler_name}: {type(error).__name__}: {str(error)[:300]}"
        update: dict = {"attempts": attempts, "last_error": last_error}
        if attempts >= conf.integer("AEGIS_OUTBOX_MAX_ATTEMPTS"):
            update |= {"status": OutboxStatus.PARKED, "parked_at": now}
            outcome = "parked"
        else:
            update["next_attempt_at"] = now + timedelta(seconds=_backoff(attempts))
            outcome = "retried"
        collection(OutboxEvent).update_one(
            {"_id": event["_id"], "claimed_by": self.name},
            {"$set": update, "$unset": {"claimed_by": "", "lease_until": ""}},
        )
        logger.warning(
            "outbox event %s %s",
            outcome,
            event["_id"],
            extra={
                "event_id": str(event["_id"]),
                "event_type": event["event_type"],
                "handler": handler_name,
                "attempts": attempts,
                "error": f"{type(error).__name__}: {str(error)[:300]}",
            },
        )
        return outcome

    # --- the loop -----------------------------------------------------------------------------

    def heartbeat(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_beat < 1.0:
            return
        collection(DispatcherHeartbeat).update_one(
            {"name": self.name},
            {"$set": {"beat_at": _now(), "pid": os.getpid(), "delivered": self.delivered}},
            upsert=True,
        )
        self._last_beat = time.monotonic()

    def retire(self) -> None:
        collection(DispatcherHeartbeat).delete_one({"name": self.name})

    def run_forever(self, *, interval: float, should_stop: Callable[[], bool]) -> None:
        """Pass after pass; sleeps `interval` only when a pass found nothing to do."""
        while not should_stop():
            try:
                self.heartbeat()
                counts = self.run_once()
            except Exception:  # the database went away for a moment: say so, then keep trying
                logger.exception("outbox pass failed; retrying")
                time.sleep(max(interval, 1.0))
                continue
            if not any(counts.values()):
                time.sleep(interval)


# --- reads and operator actions -----------------------------------------------------------------


def outbox_stats(*, now: datetime | None = None) -> dict:
    """Backlog, parked events, the age of the oldest pending event, and the freshest heartbeat."""
    now = now or _now()
    events = collection(OutboxEvent)
    oldest = events.find_one({"status": OutboxStatus.PENDING}, {"created_at": 1}, sort=[("created_at", 1)])
    beat = collection(DispatcherHeartbeat).find_one({}, {"beat_at": 1}, sort=[("beat_at", -1)])
    return {
        "pending": events.count_documents({"status": OutboxStatus.PENDING}),
        "parked": events.count_documents({"status": OutboxStatus.PARKED}),
        "oldest_pending_age": (now - oldest["created_at"]).total_seconds() if oldest else 0.0,
        "heartbeat_age": (now - beat["beat_at"]).total_seconds() if beat else None,
    }


def outbox_parked(*, limit: int = 50, cursor=None):
    """A page of parked events, newest first (by when the event was written), as a keyset.WindowPage.

    An outage can park thousands of events: the page reads bounded windows of the
    (status, created_at) index instead of sorting every parked event. `cursor`: a keyset.Cursor.
    """
    from aegis import keyset
    from transfers.selectors import bank_floor

    return keyset.window_page(
        collection(OutboxEvent),
        {"status": OutboxStatus.PARKED},
        # the planner picks outbox_status_created (status, created_at)
        limit=limit,
        floor=bank_floor(),
        cursor=cursor,
    )


def outbox_requeue(*, event_id: str | None = None, actor=None) -> int:
    """Put a parked event (or, with no id, every parked event) back in the queue with fresh attempts.

    Audit-logged as OUTBOX_REQUEUED with who asked (`actor`, a staff user; none from the command
    line) and how many events went back.
    """
    from accounts.selectors import parse_object_id
    from ledger.models import AuditAction
    from ledger.services import audit_record

    query: dict = {"status": OutboxStatus.PARKED}
    if event_id is not None:
        query["_id"] = parse_object_id(event_id)
        if query["_id"] is None:
            return 0
    result = collection(OutboxEvent).update_many(
        query,
        {
            "$set": {"status": OutboxStatus.PENDING, "attempts": 0},
            "$unset": {"parked_at": "", "next_attempt_at": "", "claimed_by": "", "lease_until": ""},
        },
    )
    audit_record(
        action=AuditAction.OUTBOX_REQUEUED,
        status="SUCCESS",
        user_id=str(actor.pk) if actor is not None else "",
        actor_id=str(actor.pk) if actor is not None else "",
        details={"event": event_id or "all", "requeued": result.modified_count},
    )
    return result.modified_count
