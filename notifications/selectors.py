"""Reads for notifications: always the caller's own."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId

from accounts.models import User
from aegis.errors import NotFound
from notifications.models import Notification

PAGE_SIZE = 20
POLL_LIMIT = 5


def notifications_for_user(*, user: User, page: int = 1) -> dict:
    qs = Notification.objects.filter(user=user).order_by("-created_at", "-id")
    total = qs.count()
    page = max(1, page)
    rows = list(qs[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    return {"rows": rows, "page": page, "total": total, "hasNextPage": page * PAGE_SIZE < total}


def unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_since(*, user: User, since: datetime, limit: int = POLL_LIMIT) -> list[Notification]:
    """Unread notifications created after `since`, oldest first (for toasts)."""
    fresh = Notification.objects.filter(user=user, read_at__isnull=True, created_at__gt=since)
    return list(fresh.order_by("created_at")[:limit])


def notification_get_owned(*, user: User, notification_id: str) -> Notification:
    if not (isinstance(notification_id, str) and len(notification_id) == 24 and ObjectId.is_valid(notification_id)):
        raise NotFound(thing="Notification")
    found = Notification.objects.filter(pk=ObjectId(notification_id), user=user).first()
    if found is None:
        raise NotFound(thing="Notification")
    return found


def poll_cursor(value: str | None) -> datetime:
    """The poller's cursor (epoch milliseconds) as a datetime; now when missing or malformed."""
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def cursor_of(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
