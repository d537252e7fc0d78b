"""The outbox dispatcher: delivers committed events to handlers, at least once, in order per aggregate.

Events are rows of `outbox_events` (`events.models.OutboxEvent`), written by
`events.services.outbox_append` in the same MongoDB transaction as the change they describe
(DESIGN §4 property 8), so an event exists iff its change committed. A dispatcher
(`manage.py dispatch_outbox`) delivers them in batches (docs/outbox.md):

- **Claim a batch.** Pending events are read oldest first (`created_at`, `_id`: the
  (status, created_at) index, whose range is the backlog). Per aggregate (the account in
  `aggregate_id`) the leading run of claimable events (lease free or run out, retry due) is a
  candidate; one `update_many` stamps the candidates still claimable with a fresh claim token and
  a lease, and a read by `_id` shows what this token really holds. A claim whose holder died runs
  out after `AEGIS_OUTBOX_LEASE_SECONDS` and is taken over.
- **Order per aggregate.** An event is delivered only if every older pending event of its
  aggregate is DELIVERED or PARKED, or held by the same batch ahead of it: in the read-back, an
  aggregate's run stops at its first candidate that is neither ours nor settled, and whatever we
  hold after that point is released at once. Two dispatchers racing for an aggregate therefore
  never interleave it; a failing event blocks its aggregate (head of line) until it is delivered
  or parked.
- **One transaction per batch.** Handlers with a `batch` attribute (`handler.batch(events,
  *, session)`: notifications, rollups) run for the whole batch in ONE transaction with its
  `outbox_deliveries` rows (unique `{event_id, handler}`; `_id` is `"<event id>:<handler>"`, so
  the rows a redelivery already has are found by `_id` and skipped). Then ONE `update_many`
  marks the batch DELIVERED. Handlers without `batch` run per event in their own transaction
  with their delivery row, as before. A handler that only writes through the given session is
  therefore applied exactly once; one with outside effects must dedupe by event id itself.
- **A failure stays one event's failure.** If the batch transaction fails (one event's handler
  raised), the batch is delivered again one event at a time, handler by handler (the path a
  `--batch 1` dispatcher always takes), so the other events still go.
- **Retries and parking.** A handler error counts one attempt and schedules a retry with
  exponential backoff; after `AEGIS_OUTBOX_MAX_ATTEMPTS` (5) the event is PARKED with its last
  error for an operator (`manage.py dispatch_outbox --parked`, `--requeue ID`).

- **Tracing** (aegis/tracing.py, nothing when off). An event carries the W3C context of the
  change that wrote it (`trace_context`). One event's delivery is a span in that trace (child of
  the writer's span, linked to it); a batch is one span of its own, linked to every event's
  context, and each event's trace gets an `outbox.delivered` span linked to the batch's, so a
  transfer can be followed from its request to its notification either way.

Every event update names the event by `_id` with plain conditions (`$not` rather than `$or`: the
embedded server plans an `$or` as a walk of the whole collection, the entire history).
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

from django.conf import settings
from django.utils.module_loading import import_string
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from aegis.clock import now_ms
from aegis.mongo import collection, get_db, run_transaction
from aegis.tracing import batch_span, continued_span, record_continuation
from events.models import DispatcherHeartbeat, OutboxDelivery, OutboxEvent, OutboxStatus
from events.services import CLAIM_FIELDS, delivery_id, delivery_row

logger = logging.getLogger("aegis.outbox")

Handler = Callable[..., None]  # handler(event: dict, *, session) -> None; optional .batch(events, *, session)
HANDLER_DEADLINE_SECONDS = 10.0
BATCH_DEADLINE_SECONDS = 20.0
SETTLED = (OutboxStatus.DELIVERED, OutboxStatus.PARKED)


def registered_handlers() -> dict[str, Handler]:
    """The handlers every event is delivered to, in this order: `AEGIS_OUTBOX_HANDLERS` (name ->
    dotted path), so consumers register in settings and this module imports none of them."""
    return {name: import_string(path) for name, path in settings.AEGIS_OUTBOX_HANDLERS.items()}


def probe(event: dict, *, session) -> None:
    """Test-only (AEGIS_TEST_OUTBOX_PROBE=1): records every call outside the transaction, so a
    double delivery shows up."""
    get_db()["outbox_test_probe"].insert_one(
        {
            "event_id": str(event["_id"]),
            "pid": os.getpid(),
            "aggregate_id": event["aggregate_id"],
            "created_at": event["created_at"],
            "at": datetime.now(UTC),
        }
    )


def always_fail(event: dict, *, session) -> None:
    """Test-only (AEGIS_TEST_OUTBOX_FAIL=1)."""
    raise RuntimeError("test handler always fails")


def _backoff(attempts: int) -> float:
    base = settings.AEGIS_OUTBOX_BACKOFF_SECONDS
    delay = min(settings.AEGIS_OUTBOX_BACKOFF_MAX_SECONDS, base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)  # jitter: retries of many events spread out


def _test_pause() -> tuple[int, int]:
    """Crash tests freeze a dispatcher once N events are delivered (handlers committed, the last
    batch not yet marked DELIVERED: the most awkward moment to die).

    `AEGIS_TEST_OUTBOX_PAUSE_AFTER=N` or `N:K`: batches are cut so that one ends at event N-K and
    the next holds events N-K+1..N (K, default 1, events in the frozen batch). Inert unless set.
    """
    raw = settings.AEGIS_TEST_OUTBOX_PAUSE_AFTER or "0"
    try:
        after, _, size = raw.partition(":")
        return int(after), max(1, int(size or 1))
    except ValueError:
        return 0, 1


def _event_attributes(event: dict) -> dict:
    return {"aegis.outbox.event_id": str(event["_id"]), "aegis.outbox.event_type": event["event_type"]}


def _claimable(event: dict, now: datetime) -> bool:
    if event.get("next_attempt_at") and event["next_attempt_at"] > now:
        return False
    return not (event.get("lease_until") and event["lease_until"] >= now)


def _claim_filter(now: datetime) -> dict:
    # `$not` matches a missing or null field too, without the `$or` the server cannot plan.
    return {
        "status": OutboxStatus.PENDING,
        "lease_until": {"$not": {"$gte": now}},
        "next_attempt_at": {"$not": {"$gt": now}},
    }


class Dispatcher:
    """One dispatcher; several may run at once (in any processes) on the same database.

    `batch_size`: events per delivery transaction (`AEGIS_OUTBOX_DELIVERY_BATCH`); 1 delivers one
    event at a time, handler by handler (the pre-batch path, kept for `--baseline` figures).
    """

    def __init__(
        self, *, handlers: dict[str, Handler] | None = None, name: str | None = None, batch_size: int | None = None
    ):
        self.handlers = registered_handlers() if handlers is None else handlers
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch_size = max(1, batch_size or settings.AEGIS_OUTBOX_DELIVERY_BATCH)
        self.delivered = 0
        self._pause_after, self._pause_batch = _test_pause()
        self._last_beat = 0.0

    # --- one pass ---------------------------------------------------------------------------

    def run_once(self) -> dict[str, int]:
        """Deliver what is deliverable now (one batch); returns counts for this pass."""
        counts = {"delivered": 0, "retried": 0, "parked": 0}
        pending = list(
            collection(OutboxEvent)
            .find({"status": OutboxStatus.PENDING})
            .sort([("created_at", 1), ("_id", 1)])
            .limit(settings.AEGIS_OUTBOX_BATCH)
        )
        if self.batch_size == 1:
            return self._run_one_at_a_time(pending, counts)
        candidates = self._candidates(pending, now_ms())
        if not candidates:
            return counts
        token = uuid.uuid4().hex
        held = self._claim_batch(candidates, token)
        if held:
            self._deliver_batch(held, token, counts)
        return counts

    def _run_one_at_a_time(self, pending: list[dict], counts: dict[str, int]) -> dict[str, int]:
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

    def _batch_limit(self) -> int:
        if not self._pause_after:
            return self.batch_size
        cut = self._pause_after - self._pause_batch
        edge = cut if self.delivered < cut else self._pause_after
        return max(1, min(self.batch_size, edge - self.delivered))

    def _candidates(self, pending: list[dict], now: datetime) -> list[dict]:
        """Oldest first, per aggregate the leading run of claimable events (a prefix of its pending ones)."""
        limit = self._batch_limit()
        blocked: set[str] = set()
        chosen: list[dict] = []
        for event in pending:
            aggregate = event["aggregate_id"]
            if aggregate in blocked:
                continue
            if not _claimable(event, now):
                blocked.add(aggregate)  # claimed elsewhere or waiting for its retry: its successors wait
                continue
            chosen.append(event)
            if len(chosen) >= limit:
                break
        return chosen

    def _claim_batch(self, candidates: list[dict], token: str) -> list[dict]:
        """Claim the candidates with one update, then keep only what may be delivered in order."""
        events = collection(OutboxEvent)
        now = now_ms()
        ids = [event["_id"] for event in candidates]
        events.update_many(
            {"_id": {"$in": ids}, **_claim_filter(now)},
            {
                "$set": {
                    "claimed_by": self.name,
                    "claim_token": token,
                    "claimed_at": now,  # kept after delivery: how long the event waited for a dispatcher
                    "lease_until": now + timedelta(seconds=settings.AEGIS_OUTBOX_LEASE_SECONDS),
                }
            },
        )
        fresh = {doc["_id"]: doc for doc in events.find({"_id": {"$in": ids}})}
        held, release, blocked = [], [], set()
        for event in candidates:
            doc, aggregate = fresh.get(event["_id"]), event["aggregate_id"]
            ours = doc is not None and doc.get("claim_token") == token and doc["status"] == OutboxStatus.PENDING
            if aggregate in blocked:
                if ours:
                    release.append(event["_id"])
            elif ours:
                held.append(doc)
            elif doc is None or doc["status"] not in SETTLED:
                # Another dispatcher holds it (or it is waiting for a retry): what we hold after it
                # in this aggregate must not overtake it.
                blocked.add(aggregate)
            # else: delivered or parked by another dispatcher since our read; its successors may go
        self._release(release, token)
        return held

    def _release(self, ids: list, token: str) -> None:
        if ids:
            collection(OutboxEvent).update_many({"_id": {"$in": ids}, "claim_token": token}, {"$unset": CLAIM_FIELDS})

    def _deliver_batch(self, held: list[dict], token: str, counts: dict[str, int]) -> None:
        batched = {name: h.batch for name, h in self.handlers.items() if callable(getattr(h, "batch", None))}
        if batched:
            try:
                self._batch_transaction(held, batched, token)
            except Exception as error:  # one event's handler (most likely): the others must still go
                logger.warning(
                    "outbox batch of %d events failed (%s: %s); delivering them one at a time",
                    len(held),
                    type(error).__name__,
                    str(error)[:300],
                    extra={"events": len(held), "error": f"{type(error).__name__}: {str(error)[:300]}"},
                )
                self._deliver_each(held, token, counts, self.handlers)
                return
        plain = {name: h for name, h in self.handlers.items() if name not in batched}
        self._deliver_each(held, token, counts, plain, mark_together=True)

    def _batch_transaction(self, held: list[dict], batched: dict[str, Callable], token: str) -> None:
        deliveries = collection(OutboxDelivery)
        event_ids = [str(event["_id"]) for event in held]

        def body(session) -> None:
            wanted = [delivery_id(event_id, name) for name in batched for event_id in event_ids]
            done = {row["_id"] for row in deliveries.find({"_id": {"$in": wanted}}, {"_id": 1}, session=session)}
            stamp = now_ms()
            rows, work = [], []
            for name, apply in batched.items():
                todo = [event for event in held if delivery_id(event["_id"], name) not in done]
                rows += [delivery_row(e["_id"], name, dispatcher=self.name, now=stamp, batch=token) for e in todo]
                if todo:
                    work.append((apply, todo))
            if rows:  # first: a row we could not see (written under another _id) refuses the batch early
                deliveries.insert_many(rows, session=session)
            for apply, todo in work:
                apply(todo, session=session)

        started_ns = time.time_ns()
        with batch_span(
            "outbox.deliver_batch",
            [event.get("trace_context") for event in held],
            **{"aegis.outbox.events": len(held), "aegis.outbox.handlers": list(batched)},
        ) as batch:
            run_transaction(body, deadline_seconds=BATCH_DEADLINE_SECONDS)
        for event in held:
            record_continuation(
                "outbox.delivered",
                event.get("trace_context"),
                start_ns=started_ns,
                linked_to=batch,
                **_event_attributes(event),
            )

    def _deliver_each(
        self, held: list[dict], token: str, counts: dict[str, int], handlers: dict, *, mark_together: bool = False
    ) -> None:
        """Each event to each of `handlers` in its own transaction, in order; an aggregate stops at its
        first failure (its later events are released). `mark_together`: one bulk mark at the end."""
        delivered, release, failed = [], [], set()
        for event in held:
            if event["aggregate_id"] in failed:
                release.append(event["_id"])
                continue
            outcome = self._run_handlers(event, handlers)
            if outcome is not None:
                counts[outcome] += 1
                failed.add(event["aggregate_id"])
                continue
            if mark_together:
                delivered.append(event["_id"])
            else:
                self._delivered([event["_id"]], token)
                counts["delivered"] += 1
        if delivered:
            self._delivered(delivered, token)
            counts["delivered"] += len(delivered)
        self._release(release, token)

    def _run_handlers(self, event: dict, handlers: dict) -> str | None:
        """None when every handler has it; else the failure's outcome ("retried" or "parked")."""
        for handler_name, handler in handlers.items():
            try:
                self._deliver(event, handler_name, handler)
            except Exception as error:  # a handler's failure is the event's failure, never the loop's
                return self._record_failure(event, handler_name, error)
        return None

    def _delivered(self, ids: list, token: str) -> None:
        """Mark events DELIVERED (one update), after their handlers committed."""
        self.delivered += len(ids)
        if self._pause_after and self.delivered == self._pause_after:
            print(f"PAUSED after {self.delivered} deliveries", flush=True)
            time.sleep(3600)
        collection(OutboxEvent).update_many(
            {"_id": {"$in": ids}, "claim_token": token},
            {
                "$set": {"status": OutboxStatus.DELIVERED, "delivered_at": now_ms()},
                "$unset": {**CLAIM_FIELDS, "next_attempt_at": ""},
            },
        )

    def _claim(self, event: dict) -> dict | None:
        """Claim one event (the one-at-a-time path)."""
        now = now_ms()
        if not _claimable(event, now):
            return None
        return collection(OutboxEvent).find_one_and_update(
            {"_id": event["_id"], **_claim_filter(now)},
            {
                "$set": {
                    "claimed_by": self.name,
                    "claim_token": uuid.uuid4().hex,
                    "claimed_at": now,
                    "lease_until": now + timedelta(seconds=settings.AEGIS_OUTBOX_LEASE_SECONDS),
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    def _process(self, event: dict) -> str | None:
        claimed = self._claim(event)
        if claimed is None:
            return None
        outcome = self._run_handlers(claimed, self.handlers)
        if outcome is not None:
            return outcome
        self._delivered([claimed["_id"]], claimed["claim_token"])
        return "delivered"

    def _deliver(self, event: dict, handler_name: str, handler: Handler) -> bool:
        """Run one handler for one event, once: its writes and the delivery row commit together."""
        event_id = str(event["_id"])
        deliveries = collection(OutboxDelivery)

        def body(session) -> bool:
            # The delivery row first: if it exists (a crash or a lost lease came in between), the
            # unique index refuses it and the handler does not run again.
            row = delivery_row(event_id, handler_name, dispatcher=self.name, now=now_ms())
            deliveries.insert_one(row, session=session)
            handler(event, session=session)
            return True

        try:
            with continued_span(
                "outbox.deliver",
                event.get("trace_context"),
                **_event_attributes(event),
                **{"aegis.outbox.handler": handler_name},
            ):
                return run_transaction(body, deadline_seconds=HANDLER_DEADLINE_SECONDS)
        except DuplicateKeyError:
            return False  # delivered before

    def _record_failure(self, event: dict, handler_name: str, error: Exception) -> str:
        attempts = int(event.get("attempts") or 0) + 1
        now = now_ms()
        last_error = f"{handler_name}: {type(error).__name__}: {str(error)[:300]}"
        update: dict = {"attempts": attempts, "last_error": last_error}
        if attempts >= settings.AEGIS_OUTBOX_MAX_ATTEMPTS:
            update |= {"status": OutboxStatus.PARKED, "parked_at": now}
            outcome = "parked"
        else:
            update["next_attempt_at"] = now + timedelta(seconds=_backoff(attempts))
            outcome = "retried"
        collection(OutboxEvent).update_one(
            {"_id": event["_id"], "claim_token": event["claim_token"]},
            {"$set": update, "$unset": CLAIM_FIELDS},
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
            {"$set": {"beat_at": now_ms(), "pid": os.getpid(), "delivered": self.delivered}},
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
