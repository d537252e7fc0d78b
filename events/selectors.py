"""Reads of the outbox for operators: the backlog's figures and the parked events."""

from __future__ import annotations

from datetime import datetime

from aegis import keyset
from aegis.clock import now_ms
from aegis.mongo import collection
from events.models import DispatcherHeartbeat, OutboxEvent, OutboxStatus


def outbox_stats(*, now: datetime | None = None) -> dict:
    """Backlog, parked events, the age of the oldest pending event, and the freshest heartbeat."""
    now = now or now_ms()
    events = collection(OutboxEvent)
    oldest = events.find_one({"status": OutboxStatus.PENDING}, {"created_at": 1}, sort=[("created_at", 1)])
    beat = collection(DispatcherHeartbeat).find_one({}, {"beat_at": 1}, sort=[("beat_at", -1)])
    return {
        "pending": events.count_documents({"status": OutboxStatus.PENDING}),
        "parked": events.count_documents({"status": OutboxStatus.PARKED}),
        "oldest_pending_age": (now - oldest["created_at"]).total_seconds() if oldest else 0.0,
        "heartbeat_age": (now - beat["beat_at"]).total_seconds() if beat else None,
    }


def outbox_parked(*, floor: datetime, limit: int = 50, cursor=None) -> keyset.WindowPage:
    """A page of parked events, newest first (by when the event was written).

    An outage can park thousands of events: the page reads bounded windows of the
    (status, created_at) index instead of sorting every parked event. `floor`: the earliest
    instant the bank can hold an event (accounts.selectors.bank_floor); `cursor`: a keyset.Cursor.
    """
    return keyset.window_page(
        collection(OutboxEvent),
        {"status": OutboxStatus.PARKED},
        # the planner picks outbox_status_created (status, created_at)
        limit=limit,
        floor=floor,
        cursor=cursor,
    )
