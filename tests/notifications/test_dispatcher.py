"""The dispatcher in one process: delivery, idempotency, order per account, retries, parking, claims."""

from datetime import timedelta

from accounts.models import AccountStatus
from accounts.services import account_set_status
from aegis.mongo import collection
from events.dispatcher import Dispatcher
from events.models import OutboxDelivery, OutboxEvent
from events.selectors import outbox_stats
from events.services import outbox_requeue
from notifications.handlers import notify_users
from notifications.models import Notification
from tests.factories import make_account
from tests.notifications.conftest import drain, events, send


def messages_of(user) -> list[str]:
    return [n.message for n in Notification.objects.filter(user=user).order_by("created_at", "id")]


def test_events_become_notifications_for_sender_and_receiver_once(funded_pair):
    sender, receiver = funded_pair
    send(sender, receiver, 150_050, "t1")
    dispatcher = Dispatcher(handlers={"notifications": notify_users})
    drain(dispatcher)
    assert messages_of(sender.user) == [
        "You received ₹5,000.00 from Aegis funding.",
        "You sent ₹1,500.50 to account …" + str(receiver.pk)[-6:] + ".",
    ]
    assert messages_of(receiver.user) == ["You received ₹1,500.50 from account …" + str(sender.pk)[-6:] + "."]
    assert {e["status"] for e in events()} == {"DELIVERED"}
    assert all(e["delivered_at"] is not None and "claimed_by" not in e for e in events())

    # Delivered again (as after a crash before marking it DELIVERED): nothing is duplicated.
    collection(OutboxEvent).update_many({}, {"$set": {"status": "PENDING"}})
    drain(dispatcher)
    assert len(messages_of(sender.user)) == 2 and len(messages_of(receiver.user)) == 1
    assert Notification.objects.count() == 3
    assert OutboxDelivery.objects.count() == len(events())


def test_failed_transfer_and_freeze_notify_the_right_people(bank, funded_pair):
    sender, receiver = funded_pair
    account_set_status(account=receiver, actor=bank.admin_user, new_status=AccountStatus.FROZEN)
    try:
        send(sender, receiver, 1_000, "to-frozen")
    except Exception:  # noqa: S110 - refused and recorded as FAILED; the event is what matters
        pass
    drain(Dispatcher(handlers={"notifications": notify_users}))
    assert messages_of(receiver.user) == [
        "Your account was frozen by Aegis staff: it cannot send or receive money for now."
    ]
    assert messages_of(sender.user)[-1].startswith("Your transfer of ₹10.00 to account …")
    assert "failed: This account cannot receive payments." in messages_of(sender.user)[-1]
    assert not Notification.objects.filter(user=bank.system_user).exists()


def test_events_of_one_account_are_delivered_in_order(fund, bank):
    sender, receiver = make_account(), make_account()
    fund(sender, 100_000)
    for i in range(6):
        send(sender, receiver, 100 + i, f"order-{i}")
    seen = []
    drain(Dispatcher(handlers={"record": lambda event, session: seen.append(event["payload"].get("amount"))}))
    from_sender = [amount for amount in seen if amount in range(100, 106)]
    assert from_sender == [100, 101, 102, 103, 104, 105]


def test_failing_handler_is_retried_then_parked_and_blocks_only_its_account(settings, funded_pair, fund):
    settings.AEGIS_OUTBOX_MAX_ATTEMPTS = 5
    sender, receiver = funded_pair
    other = make_account()
    fund(other, 10_000)
    send(sender, receiver, 100, "poison")
    send(sender, receiver, 200, "after-poison")
    calls = []

    def picky(event, session):
        calls.append(event["payload"].get("amount"))
        if event["payload"].get("amount") == 100:
            raise ValueError("cannot handle 100")

    dispatcher = Dispatcher(handlers={"picky": picky})
    counts = [dispatcher.run_once() for _ in range(6)]
    assert [c["retried"] for c in counts[:4]] == [1, 1, 1, 1] and counts[4]["parked"] == 1
    assert calls.count(100) == 5
    # The next event of the same account waited behind the poison one, then went through.
    assert calls.index(200) > max(i for i, a in enumerate(calls) if a == 100)
    parked = events(status="PARKED")
    assert len(parked) == 1 and parked[0]["attempts"] == 5
    assert parked[0]["last_error"] == "picky: ValueError: cannot handle 100"
    assert outbox_stats()["parked"] == 1

    assert outbox_requeue(event_id=str(parked[0]["_id"])) == 1
    assert events(status="PARKED") == [] and events(_id=parked[0]["_id"])[0]["attempts"] == 0


def test_a_claimed_event_is_not_delivered_by_another_dispatcher_until_its_lease_ends(settings, funded_pair):
    sender, receiver = funded_pair
    send(sender, receiver, 100, "claimed")
    head = events(aggregate_id=str(sender.pk))[0]
    first, second = [], []
    one = Dispatcher(handlers={"h": lambda e, session: first.append(e["_id"])}, name="one")
    two = Dispatcher(handlers={"h": lambda e, session: second.append(e["_id"])}, name="two")
    assert one._claim(head) is not None  # one claims it, then (say) dies before delivering
    drain(two)
    assert head["_id"] not in second
    collection(OutboxEvent).update_one(
        {"_id": head["_id"]}, {"$set": {"lease_until": head["created_at"] - timedelta(seconds=1)}}
    )
    drain(two)
    assert second.count(head["_id"]) == 1 and first == []


def test_dispatch_outbox_command_once_parked_and_requeue(funded_pair):
    import io
    import json

    from django.core.management import call_command

    sender, receiver = funded_pair
    send(sender, receiver, 100, "cmd-1")
    out = io.StringIO()
    call_command("dispatch_outbox", "--once", stdout=out)
    assert out.getvalue().strip() == "outbox: 2 delivered, 0 to retry, 0 parked"
    head = events()[0]
    collection(OutboxEvent).update_one({"_id": head["_id"]}, {"$set": {"status": "PARKED", "last_error": "x: E: y"}})
    out = io.StringIO()
    call_command("dispatch_outbox", "--parked", stdout=out)
    assert json.loads(out.getvalue())["id"] == str(head["_id"])
    out = io.StringIO()
    call_command("dispatch_outbox", "--requeue", "all", stdout=out)
    assert out.getvalue().strip() == "requeued 1 parked event(s)"
    assert events(_id=head["_id"])[0]["status"] == "PENDING"
