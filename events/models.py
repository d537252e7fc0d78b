"""The transactional outbox: events, their deliveries to handlers, and the dispatchers' heartbeats.

An `OutboxEvent` is written in the same MongoDB transaction as the change it describes
(`events.services.outbox_append`). The dispatcher keeps its claim on an event in that document
(`claimed_by`, `lease_until`, `next_attempt_at`, `last_error`, `parked_at`: plain MongoDB fields,
no schema change). `OutboxDelivery` is one row per (event, handler) delivered: its unique index is
what makes a handler idempotent when an event is delivered again. `DispatcherHeartbeat` is each
running dispatcher's last sign of life (for /readyz, /metrics).

The collections kept their names when these models moved here (events/migrations/0001 only takes
them over in Django's state), so an existing database keeps its data.
"""

from django.db import models
from django.utils import timezone


class OutboxStatus(models.TextChoices):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    PARKED = "PARKED"


class OutboxEvent(models.Model):
    event_type = models.CharField(max_length=40)
    aggregate_id = models.CharField(max_length=24)  # the account the event is ordered by
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The W3C trace context of the change that wrote it ({} with tracing off; docs/tracing.md).
    trace_context = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "outbox_events"
        indexes = [models.Index(fields=["status", "created_at"], name="outbox_status_created")]


class OutboxDelivery(models.Model):
    event_id = models.CharField(max_length=24)
    handler = models.CharField(max_length=40)
    dispatcher = models.CharField(max_length=80, blank=True, default="")
    delivered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "outbox_deliveries"
        constraints = [models.UniqueConstraint(fields=["event_id", "handler"], name="outbox_delivery_unique")]


class DispatcherHeartbeat(models.Model):
    name = models.CharField(max_length=80, unique=True)
    beat_at = models.DateTimeField(default=timezone.now)
    pid = models.IntegerField(default=0)
    delivered = models.BigIntegerField(default=0)

    class Meta:
        db_table = "outbox_dispatchers"
