"""Reads for notifications: always the caller's own.

Every read is a bounded window of the (user_id, created_at, _id) index (aegis.keyset), never
a count or a skip: the embedded server loads a query's whole index range before `limit`, so a
`count_documents` of 10,000 unread notifications took a second (50,000: 6 s). The unread count
is a counter document kept exact by notifications.services.
"""

from __future__ import annotations

from datetime import UTC, datetime

from accounts.models import User
from aegis import keyset
from aegis.errors import NotFound
from aegis.ids import parse_object_id
from aegis.mongo import collection
from notifications.models import Notification, NotificationCounter

PAGE_SIZE = 20
POLL_LIMIT = 5
LISTING = "notifications"
_FIELDS = Notification._meta.concrete_fields


def _model(doc: dict) -> Notification:
    return Notification.from_db("default", [f.attname for f in _FIELDS], [doc.get(f.column) for f in _FIELDS])


def _newest(user: User, *, limit: int, cursor=None, floor: datetime | None = None, projection=None, now=None):
    # Nobody has notifications from before they joined (minus the clock skew other hosts may have).
    joined = user.date_joined - keyset.CLOCK_SKEW
    return keyset.window_page(
        collection(Notification),
        {"user_id": user.pk},
        limit=limit,
        floor=max(joined, floor) if floor is not None else joined,
        cursor=cursor,
        projection=projection,
        now=now,
    )


def notifications_for_user(*, user: User, cursor: str | None = None, page: int = 1) -> dict:
    """One page, newest first: {"rows": [Notification], "newer", "older"} (cursors, or "").

    `cursor` (a Newer/Older link) wins over `page`; `page` (old links) walks at most
    keyset.MAX_WALKED_PAGE pages. Raises keyset.InvalidCursor for a cursor that is not ours.
    """
    scope = str(user.pk)
    position = keyset.decode_cursor(cursor, listing=LISTING, scope=scope)
    if position is not None:
        result = _newest(user, limit=PAGE_SIZE, cursor=position)
    else:
        result = keyset.walk_to_page(
            lambda at: _newest(user, limit=PAGE_SIZE, cursor=at), max(1, min(page, keyset.MAX_WALKED_PAGE))
        )

    def token(at) -> str:
        return keyset.encode_cursor(at, listing=LISTING, scope=scope) if at else ""

    return {"rows": [_model(d) for d in result.rows], "newer": token(result.newer), "older": token(result.older)}


def unread_count(*, user: User) -> int:
    """The exact number of `user`'s unread notifications: one `_id` read of their counter.

    Kept exact by notifications.services (same transaction as each change); templates show
    "99+" above 99, but the number itself is never a window's estimate.
    """
    counter = collection(NotificationCounter).find_one({"_id": user.pk}, {"unread": 1})
    return int(counter["unread"]) if counter else 0


def notifications_since(*, user: User, since: datetime, limit: int = POLL_LIMIT) -> list[Notification]:
    """Unread notifications created after `since`, oldest first (for toasts).

    Read newest first in a window floored at `since`, so a stale or forged `since` costs one
    page of reads, not the history; when more than `limit` arrived between two polls the
    newest `limit` are toasted (the rest are in the list).
    """
    newest = _newest(user, limit=limit, floor=since)
    fresh = [r for r in newest.rows if r.get("read_at") is None and keyset.Position.of(r).created_at > since]
    return [_model(r) for r in reversed(fresh)]


def notification_get_owned(*, user: User, notification_id: str) -> Notification:
    oid = parse_object_id(notification_id)
    found = Notification.objects.filter(pk=oid, user=user).first() if oid else None
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
