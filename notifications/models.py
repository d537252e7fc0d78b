"""Per-user notifications: what the outbox's `notifications` handler writes for each event.

- `Notification`: what a person sees in /notifications and as toasts.
- `NotificationCounter`: each person's exact unread count (the bell).
"""

from django.db import models
from django.utils import timezone
from django_mongodb_backend.fields import ObjectIdField


class NotificationLevel(models.TextChoices):
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


class Notification(models.Model):
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+", db_index=False)
    event_id = models.CharField(max_length=24)
    event_type = models.CharField(max_length=40)
    level = models.CharField(max_length=10, choices=NotificationLevel.choices, default=NotificationLevel.INFO)
    message = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notifications"
        constraints = [models.UniqueConstraint(fields=["event_id", "user"], name="notification_event_user_unique")]
        indexes = [
            models.Index(fields=["user", "created_at", "id"], name="notification_user_created_id"),
            models.Index(fields=["user", "read_at"], name="notification_user_read"),
        ]

    def __str__(self) -> str:
        return self.message


class NotificationCounter(models.Model):
    """A person's number of unread notifications, kept exact by construction (the bell reads one doc).

    `_id` is the user's id, so the counter's upsert key is unique without a unique index (the
    embedded server's planner never uses one: it is a partial index there) and every read is an
    `_id` lookup. Changed only in the transaction that changes what it counts:
    notifications.services.notifications_insert (+1 per unread row, with the dispatcher's delivery
    row) and the mark-read services (minus the rows they actually flipped from unread).
    """

    user_id = ObjectIdField(primary_key=True, db_column="_id")
    unread = models.BigIntegerField(default=0)
    marked_read_at = models.DateTimeField(null=True, blank=True)  # the last "mark all read" that flipped any

    class Meta:
        db_table = "notification_counters"
