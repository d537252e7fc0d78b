"""Writes for notifications: a person marks their own notifications read."""

from __future__ import annotations

from django.utils import timezone

from accounts.models import User
from notifications.models import Notification


def notification_mark_read(*, user: User, notification: Notification) -> Notification:
    if notification.user_id == user.pk and notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, user=user, read_at__isnull=True).update(
            read_at=notification.read_at
        )
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
