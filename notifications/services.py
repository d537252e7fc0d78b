"""Writes for notifications: delivering them (the outbox handler) and a person marking theirs read.

Each person's unread count is one `NotificationCounter` document (`_id` = the user's id) that
changes only inside the transaction that changes what it counts, so it is exact by construction:
+1 for each unread notification inserted, minus the number of notifications a mark-read actually
flipped from unread (the update's modified count, in that transaction's snapshot). Two writers
of one person's notifications both write that counter, so the server's write-conflict check
serialises them (the loser retries on a fresh snapshot: a second mark-all-read then flips none),
and a counter never goes below zero. The bell reads the counter, never a count of the history.
"""

from __future__ import annotations

from collections import Counter

from django.utils import timezone
from pymongo import UpdateOne

from accounts.models import User
from aegis.mongo import collection, run_transaction
from notifications.models import Notification, NotificationCounter

# Marking everything read flips every unread row in one transaction (a person may have
# thousands after a long absence); the embedded server writes about 1,000 rows a second.
MARK_ALL_READ_DEADLINE_SECONDS = 60.0
MARK_READ_DEADLINE_SECONDS = 10.0


def notifications_insert(rows: list[dict], *, session) -> None:
    """Insert notification documents and count their unread ones on their owners' counters.

    `session` is the transaction both writes commit in (the dispatcher's, with its delivery row,
    so a redelivered event counts nothing twice). Pass None only where nothing else writes
    notifications at the same time (a bulk generator on a fresh bank): the writes then commit apart.
    """
    if not rows:
        return
    collection(Notification).insert_many(rows, session=session)
    unread = Counter(row["user_id"] for row in rows if row.get("read_at") is None)
    if unread:
        collection(NotificationCounter).bulk_write(
            [UpdateOne({"_id": user_id}, {"$inc": {"unread": n}}, upsert=True) for user_id, n in unread.items()],
            ordered=True,
            session=session,
        )


def _uncount(user: User, flipped: int, session) -> None:
    if flipped:
        collection(NotificationCounter).update_one({"_id": user.pk}, {"$inc": {"unread": -flipped}}, session=session)


def notification_mark_read(*, user: User, notification: Notification) -> Notification:
    if notification.user_id != user.pk or notification.read_at is not None:
        return notification
    moment = timezone.now()

    def write(session) -> int:
        flipped = (
            collection(Notification)
            .update_one(
                {"_id": notification.pk, "user_id": user.pk, "read_at": None},
                {"$set": {"read_at": moment}},
                session=session,
            )
            .modified_count
        )
        _uncount(user, flipped, session)
        return flipped

    run_transaction(write, deadline_seconds=MARK_READ_DEADLINE_SECONDS)
    notification.read_at = moment
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    """Mark every unread notification of `user` read; returns how many this call flipped."""
    moment = timezone.now()

    def write(session) -> int:
        counters = collection(NotificationCounter)
        # The counter is exact in this snapshot: nothing unread means nothing to write (so a
        # repeated click writes nothing and never holds up a delivery to this person).
        current = counters.find_one({"_id": user.pk}, {"unread": 1}, session=session)
        if not current or current["unread"] <= 0:
            return 0
        # Then the counter is written first: flipping thousands of rows takes seconds on the
        # embedded server (about 1 ms a row) and the first writer of a document wins a conflict,
        # so a delivery arriving meanwhile retries (its event waits) instead of restarting this.
        counters.update_one({"_id": user.pk}, {"$set": {"marked_read_at": moment}}, session=session)
        # An equality on (user_id, read_at): the notification_user_read index range is exactly
        # the unread rows, which this has to touch anyway.
        flipped = (
            collection(Notification)
            .update_many({"user_id": user.pk, "read_at": None}, {"$set": {"read_at": moment}}, session=session)
            .modified_count
        )
        _uncount(user, flipped, session)
        return flipped

    return run_transaction(write, deadline_seconds=MARK_ALL_READ_DEADLINE_SECONDS)
