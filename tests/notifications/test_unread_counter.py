"""The unread counter (NotificationCounter) against an exact recount, on the real embedded server."""

import importlib
import itertools
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

from django.apps import apps
from django.db import connections
from django.test import Client

from aegis.mongo import collection
from events.dispatcher import Dispatcher
from events.models import OutboxEvent
from notifications.handlers import notify_users
from notifications.models import Notification, NotificationCounter
from notifications.selectors import unread_count
from notifications.services import notification_mark_read, notifications_insert, notifications_mark_all_read
from tests.factories import make_account, make_user
from tests.notifications.conftest import drain, events, send

EVENT_IDS = itertools.count(1)


def recount(user) -> int:
    """The truth, the slow way: every unread notification of `user`."""
    return collection(Notification).count_documents({"user_id": user.pk, "read_at": None})


def counter(user) -> int | None:
    doc = collection(NotificationCounter).find_one({"_id": user.pk})
    return None if doc is None else doc["unread"]


def assert_exact(*users) -> None:
    for user in users:
        assert unread_count(user=user) == recount(user), user.email
        assert counter(user) in (None, recount(user))


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bulk_unread(user, count: int, *, end: datetime | None = None) -> None:
    end = end or datetime.now(UTC) - timedelta(minutes=1)
    rows = [
        {
            "user_id": user.pk,
            "event_id": f"{next(EVENT_IDS):024x}",
            "event_type": "transaction.completed",
            "level": "success",
            "message": f"You received ₹{k}.00 from Aegis funding.",
            "created_at": end - timedelta(minutes=k),
            "read_at": None,
        }
        for k in range(count)
    ]
    for i in range(0, count, 1000):
        notifications_insert(rows[i : i + 1000], session=None)


def test_events_delivered_by_the_dispatcher_are_counted_exactly_once(funded_pair):
    sender, receiver = funded_pair
    for k in range(5):
        send(sender, receiver, 1_000 + k, f"count-{k}")
    dispatcher = Dispatcher()  # the registered handlers, as `manage.py dispatch_outbox` runs them
    drain(dispatcher, passes=50)
    assert {e["status"] for e in events()} == {"DELIVERED"}
    assert unread_count(user=sender.user) == 6  # its funding and five sends
    assert unread_count(user=receiver.user) == 5
    assert_exact(sender.user, receiver.user)

    # Delivered again (a dispatcher died after its handlers committed, before marking the events
    # DELIVERED; or a lease ran out): the delivery rows refuse the handler, nothing counts twice.
    collection(OutboxEvent).update_many({}, {"$set": {"status": "PENDING"}})
    drain(Dispatcher(), passes=50)
    assert {e["status"] for e in events()} == {"DELIVERED"}
    assert unread_count(user=sender.user) == 6 and unread_count(user=receiver.user) == 5
    assert_exact(sender.user, receiver.user)


def test_one_event_delivered_twice_by_two_dispatchers_counts_once(funded_pair):
    sender, receiver = funded_pair
    send(sender, receiver, 2_500, "twice")
    event = events(event_type="transaction.completed", aggregate_id=str(sender.pk))[-1]
    first, second = (
        Dispatcher(handlers={"notifications": notify_users}),
        Dispatcher(handlers={"notifications": notify_users}),
    )
    assert first._deliver(event, "notifications", notify_users) is True
    assert second._deliver(event, "notifications", notify_users) is False  # refused whole
    assert unread_count(user=receiver.user) == 1
    assert_exact(sender.user, receiver.user)


def test_marking_one_read_and_all_read_keeps_the_counter_exact(funded_pair):
    sender, receiver = funded_pair
    for k in range(4):
        send(sender, receiver, 100 + k, f"read-{k}")
    drain(Dispatcher(), passes=50)
    client = client_for(receiver.user)
    mine = list(Notification.objects.filter(user=receiver.user).order_by("created_at"))
    assert unread_count(user=receiver.user) == 4

    assert client.post(f"/notifications/{mine[0].pk}/read").status_code == 302
    assert unread_count(user=receiver.user) == 3
    assert client.post(f"/notifications/{mine[0].pk}/read").status_code == 302  # again: no-op
    # A stale copy (loaded before it was read elsewhere) flips nothing, so it uncounts nothing.
    notification_mark_read(user=receiver.user, notification=mine[0])
    assert unread_count(user=receiver.user) == 3
    # Someone else's notification: not theirs to mark, and their counter does not move.
    theirs = Notification.objects.filter(user=sender.user).first()
    assert client.post(f"/notifications/{theirs.pk}/read").status_code == 404
    assert_exact(sender.user, receiver.user)

    assert client.post("/notifications/read-all").status_code == 302
    assert unread_count(user=receiver.user) == 0 == recount(receiver.user)
    assert notifications_mark_all_read(user=receiver.user) == 0  # nothing left to flip
    assert counter(receiver.user) == 0
    assert_exact(sender.user, receiver.user)
    assert 'class="bell-count"' not in client.get("/notifications").content.decode()


def test_concurrent_mark_all_read_and_deliveries_end_exact(fund, bank):
    sender, receiver = make_account(), make_account()
    fund(sender, 1_000_000)
    drain(Dispatcher(), passes=50)
    bulk_unread(receiver.user, 400)
    for k in range(12):  # pending events the dispatcher delivers while the person reads
        send(sender, receiver, 100 + k, f"race-{k}")
    errors: list[BaseException] = []
    flipped: list[int] = []
    start, delivered = threading.Barrier(3), threading.Event()

    def reader():
        try:
            start.wait()
            while not delivered.is_set():
                flipped.append(notifications_mark_all_read(user=receiver.user))
            flipped.append(notifications_mark_all_read(user=receiver.user))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    def dispatcher():
        try:
            start.wait()
            drain(Dispatcher(), passes=50)
            delivered.set()
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader), threading.Thread(target=reader), threading.Thread(target=dispatcher)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert {e["status"] for e in events()} == {"DELIVERED"}
    assert collection(Notification).count_documents({"user_id": receiver.user.pk}) == 400 + 12
    # Each notification was flipped by exactly one of the readers, and each reader's last pass
    # came after the last delivery: nothing is left unread, and the counter says so.
    assert sum(flipped) == 412
    assert counter(receiver.user) == 0 == recount(receiver.user)
    assert_exact(sender.user, receiver.user)


def test_five_thousand_unread_are_counted_exactly_and_read_in_one_document(bank):
    person = make_user(date_joined=datetime.now(UTC) - timedelta(days=10))
    bulk_unread(person, 5_000)
    assert unread_count(user=person) == 5_000 == recount(person)  # not "the unread among the newest 100"
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        unread_count(user=person)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.01, timings  # one `_id` read (a recount took ~0.5 s)
    body = client_for(person).get("/notifications").content.decode()
    assert '<span class="bell-count">99+</span>' in body and "Mark all read (99+)" in body
    assert notifications_mark_all_read(user=person) == 5_000
    assert unread_count(user=person) == 0 == recount(person)


def test_the_migration_seeds_counters_from_the_unread_notifications(bank):
    first, second, idle = make_user(), make_user(), make_user()
    now = datetime.now(UTC)
    rows = [
        {"user_id": u.pk, "event_id": f"{next(EVENT_IDS):024x}", "event_type": "x", "level": "info",
         "message": "m", "created_at": now, "read_at": read}
        for u, read in [(first, None), (first, None), (first, now), (second, None), (idle, now)]
    ]  # fmt: skip
    collection(Notification).insert_many(rows)  # as they were before counters existed
    collection(NotificationCounter).delete_many({})
    migration = importlib.import_module("notifications.migrations.0003_notification_counters")
    with connections["default"].schema_editor() as editor:
        migration.seed_counters(apps, editor)
    assert (counter(first), counter(second), counter(idle)) == (2, 1, None)
    assert_exact(first, second, idle)
