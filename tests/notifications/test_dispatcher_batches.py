"""Batch delivery: one claim, one transaction and one mark per batch, with every guarantee kept.

Each test runs real transfers on the real embedded server. The order proof for several
dispatchers uses OS processes (`manage.py dispatch_outbox`) delivering while transfers are made.
"""

from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from aegis.mongo import collection, get_db
from events.dispatcher import Dispatcher, registered_handlers
from events.models import OutboxDelivery, OutboxEvent
from notifications.handlers import notifications_for_event, notify_users
from notifications.models import Notification, NotificationCounter
from tests.factories import make_account
from tests.notifications.conftest import drain, events, send
from tests.notifications.test_dispatcher_processes import (
    DispatcherProcess,
    assert_each_event_delivered_once_in_order,
    make_traffic,
    wait_until_all_delivered,
)
from transfers.rollups import HANDLER_NAME, rollup_apply, rollups_read, rollups_recount


def assert_effects_exact() -> None:
    """Every event's notifications exactly once, exact unread counters, rollups equal to a recount."""
    expected = Counter()
    for event in events():
        for user, _, message in notifications_for_event(event):
            expected[(str(event["_id"]), str(user), message)] += 1
    actual = Counter((n.event_id, str(n.user_id), n.message) for n in Notification.objects.all())
    assert actual == expected
    unread = Counter(str(n.user_id) for n in Notification.objects.filter(read_at=None))
    counters = {str(c["_id"]): c["unread"] for c in collection(NotificationCounter).find()}
    assert {user: n for user, n in counters.items() if n} == dict(unread)
    assert rollups_read() == rollups_recount()


def test_one_pass_delivers_a_whole_batch_in_one_transaction(fund):
    make_traffic(fund, accounts=5, transfers=20)
    total = len(events())
    dispatcher = Dispatcher(batch_size=100)
    counts = dispatcher.run_once()
    # Five sender aggregates and the system's funding events: every run is claimable at once.
    assert counts == {"delivered": total, "retried": 0, "parked": 0}
    assert {e["status"] for e in events()} == {"DELIVERED"}
    assert all("claimed_by" not in e and "claim_token" not in e for e in events())
    rows = list(collection(OutboxDelivery).find())
    assert len(rows) == 2 * total and len({r["batch"] for r in rows}) == 1  # one transaction wrote them
    assert {r["_id"] for r in rows} == {f"{e['_id']}:{h}" for e in events() for h in ("notifications", "rollups")}
    assert len({e["delivered_at"] for e in events()}) == 1  # one bulk mark
    assert_effects_exact()


def test_a_redelivered_batch_skips_the_rows_it_already_has(fund):
    make_traffic(fund, accounts=4, transfers=12)
    Dispatcher(batch_size=6).run_once()  # six events delivered, the rest still pending
    first = {r["_id"] for r in collection(OutboxDelivery).find()}
    assert len(first) == 12
    # As after a crash between the batch's commit and its mark: delivered events are pending again.
    collection(OutboxEvent).update_many({}, {"$set": {"status": "PENDING"}})
    drain(Dispatcher(batch_size=100))
    assert {e["status"] for e in events()} == {"DELIVERED"}
    assert OutboxDelivery.objects.count() == 2 * len(events())
    assert first <= {r["_id"] for r in collection(OutboxDelivery).find()}
    assert_effects_exact()


def test_a_delivery_row_the_batch_cannot_see_sends_the_batch_one_at_a_time(fund, caplog):
    """A delivery row under another `_id` (written before rows were named by event and handler);
    the batch's insert is then refused by the unique {event_id, handler} index and the
    one-at-a-time path skips that handler for that event only."""
    make_traffic(fund, accounts=3, transfers=6)
    target = events()[-1]
    collection(OutboxDelivery).insert_one(
        {"_id": ObjectId(), "event_id": str(target["_id"]), "handler": HANDLER_NAME, "dispatcher": "rollups_rebuild"}
    )
    calls = []

    def counting_rollups(event, *, session):
        calls.append(event["_id"])
        rollup_apply(event, session=session)

    counting_rollups.batch = rollup_apply.batch
    drain(Dispatcher(handlers={"notifications": notify_users, HANDLER_NAME: counting_rollups}, batch_size=100))
    assert {e["status"] for e in events()} == {"DELIVERED"}
    assert target["_id"] not in calls and len(calls) == len(events()) - 1  # one at a time, all but it
    assert "delivering them one at a time" in caplog.text
    assert OutboxDelivery.objects.count() == 2 * len(events())
    # Its transaction was counted by the rebuild, not by the dispatcher: one completion fewer.
    assert rollups_read()["byStatus"]["COMPLETED"] == rollups_recount()["byStatus"]["COMPLETED"] - 1


def test_one_bad_event_fails_alone_and_blocks_only_its_account(settings, fund):
    settings.AEGIS_OUTBOX_MAX_ATTEMPTS = 3
    sender, receiver, other = make_account(), make_account(), make_account()
    for person in (sender, other):
        fund(person, 100_000)
    send(sender, receiver, 100, "poison")
    send(sender, receiver, 200, "after-poison")
    send(other, receiver, 300, "bystander")
    applied, batches = [], []

    def per_event(event, *, session):
        if event["payload"].get("amount") == 100:
            raise ValueError("cannot handle 100")
        get_db()["batch_effects"].insert_one({"event_id": event["_id"]}, session=session)
        applied.append(event["payload"].get("amount"))

    def whole_batch(batch, *, session):
        batches.append(len(batch))
        for event in batch:
            per_event(event, session=session)

    per_event.batch = whole_batch
    get_db().drop_collection("batch_effects")
    dispatcher = Dispatcher(handlers={"picky": per_event}, batch_size=100)
    first = dispatcher.run_once()
    # The batch transaction failed, then one at a time: the others went, the poison is retried
    # and the event behind it on the same account waits.
    assert batches == [5] and first == {"delivered": 3, "retried": 1, "parked": 0}
    assert 200 not in applied and 300 in applied
    behind = events(aggregate_id=str(sender.pk))[-1]
    assert behind["status"] == "PENDING" and "claim_token" not in behind  # released, not left leased
    assert [dispatcher.run_once()["retried"], dispatcher.run_once()["parked"]] == [1, 1]
    dispatcher.run_once()
    assert applied.count(200) == 1 and 100 not in applied
    assert [e["status"] for e in events()].count("PARKED") == 1
    # Nothing the failed batch transactions wrote survived: each applied event has one effect row.
    effects = Counter(d["event_id"] for d in get_db()["batch_effects"].find())
    assert set(effects.values()) == {1} and len(effects) == len(events()) - 1
    get_db().drop_collection("batch_effects")


def test_a_batch_never_overtakes_an_event_held_by_another_dispatcher(funded_pair, fund):
    sender, receiver = funded_pair
    for i in range(3):
        send(sender, receiver, 100 + i, f"held-{i}")
    mine = [e for e in events() if e["aggregate_id"] == str(sender.pk)]
    one = Dispatcher(handlers={}, name="one", batch_size=100)
    two = Dispatcher(handlers={}, name="two", batch_size=100)
    # `two` reads the backlog, then `one` claims the head of the sender's events before `two` claims.
    pending = list(collection(OutboxEvent).find({"status": "PENDING"}).sort([("created_at", 1), ("_id", 1)]))
    candidates = two._candidates(pending, datetime.now(UTC))
    assert [e["_id"] for e in candidates if e["aggregate_id"] == str(sender.pk)] == [e["_id"] for e in mine]
    assert one._claim(mine[0]) is not None
    held = two._claim_batch(candidates, "token-two")
    assert not any(e["aggregate_id"] == str(sender.pk) for e in held)  # its head is one's: all wait
    assert all("claim_token" not in e for e in events(_id={"$in": [e["_id"] for e in mine[1:]]}))
    # Once the head is delivered, the rest of the account goes, in order.
    seen = []
    collection(OutboxEvent).update_one({"_id": mine[0]["_id"]}, {"$set": {"status": "DELIVERED"}})
    drain(Dispatcher(handlers={"h": lambda e, session: seen.append(e["_id"])}, batch_size=100))
    assert [i for i in seen if i in {e["_id"] for e in mine}] == [e["_id"] for e in mine[1:]]


@pytest.mark.slow
def test_a_dispatcher_killed_after_a_batch_committed_loses_and_duplicates_nothing(fund, subprocess_env):
    get_db().drop_collection("outbox_test_probe")
    make_traffic(fund, accounts=4, transfers=16)
    total = len(events())
    env = {**subprocess_env, "AEGIS_TEST_OUTBOX_PROBE": "1", "AEGIS_OUTBOX_LEASE_SECONDS": "2"}
    doomed = DispatcherProcess(env, AEGIS_TEST_OUTBOX_PAUSE_AFTER="12:5")
    doomed.wait_for_line("PAUSED")
    doomed.kill()  # a batch of five committed (every handler), none of it marked DELIVERED
    assert collection(OutboxEvent).count_documents({"status": "DELIVERED"}) == 7
    assert OutboxDelivery.objects.count() == 3 * 12
    frozen = {r["batch"] for r in collection(OutboxDelivery).find({"handler": "notifications"})}
    assert len(frozen) == 2  # the marked batch of seven and the frozen batch of five
    survivor = DispatcherProcess(env)
    try:
        wait_until_all_delivered(total)
    finally:
        assert survivor.stop() == 0
    assert_each_event_delivered_once_in_order()
    get_db().drop_collection("outbox_test_probe")


@pytest.mark.slow
def test_three_dispatcher_processes_keep_each_accounts_order_and_deliver_once(fund, subprocess_env):
    people = [make_account() for _ in range(6)]
    for person in people:
        fund(person, 500_000)
    env = {**subprocess_env, "AEGIS_OUTBOX_DELIVERY_BATCH": "4"}  # small batches: they interleave
    trio = [DispatcherProcess(env) for _ in range(3)]
    try:
        for proc in trio:
            proc.wait_for_line("dispatcher ")
        for i in range(90):  # made while the dispatchers race for them
            sender, receiver = people[i % 6], people[(i * 5 + 1) % 6]
            if sender.pk == receiver.pk:
                receiver = people[(i + 1) % 6]
            send(sender, receiver, 100 + i, f"race-{i}")
        wait_until_all_delivered(len(events()), timeout=90)
    finally:
        codes = [proc.stop() for proc in trio]
    assert codes == [0, 0, 0]
    all_events = events()
    handlers = list(registered_handlers())
    rows = list(collection(OutboxDelivery).find())
    assert len(rows) == len(handlers) * len(all_events)  # each (event, handler) exactly once
    assert_effects_exact()
    by_event = defaultdict(list)
    for row in rows:
        by_event[row["event_id"]].append(row)
    # Per account, in creation order: an event's handlers ran in the batch of its predecessor, or
    # after the predecessor was marked DELIVERED.
    per_aggregate = defaultdict(list)
    for event in all_events:
        per_aggregate[event["aggregate_id"]].append(event)
    batches_by = Counter()
    for chain in per_aggregate.values():
        for before, after in zip(chain, chain[1:], strict=False):
            rows_before, rows_after = by_event[str(before["_id"])], by_event[str(after["_id"])]
            same_batch = {r.get("batch") for r in rows_after} == {r.get("batch") for r in rows_before}
            assert same_batch or min(r["delivered_at"] for r in rows_after) >= before["delivered_at"], (
                f"{after['_id']} was delivered before {before['_id']} of the same account was done"
            )
    for row in rows:
        batches_by[row["dispatcher"]] += 1
    print(f"{len(all_events)} events; delivery rows per dispatcher: {dict(batches_by)}")
