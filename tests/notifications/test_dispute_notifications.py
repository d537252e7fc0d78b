"""What each side of a dispute and its reversal is told, delivered by the real dispatcher."""

from accounts.models import Role
from aegis.mongo import collection
from disputes import services
from events.dispatcher import Dispatcher
from notifications.models import Notification
from tests.factories import make_account, make_user
from tests.notifications.conftest import drain, send


def messages(user) -> list[tuple[str, str]]:
    rows = collection(Notification).find({"user_id": user.pk}).sort([("created_at", 1), ("_id", 1)])
    return [(row["level"], row["message"]) for row in rows]


def test_the_disputer_hears_each_step_and_both_sides_hear_of_the_reversal(fund):
    asha, ravi = make_account(user=make_user(name="Asha")), make_account(user=make_user(name="Ravi"))
    fund(asha, 10_000)
    txn = send(asha, ravi, 2_500, "k1").transaction
    maker, checker = make_user(role=Role.ADMIN), make_user(role=Role.ADMIN)
    dispute = services.dispute_open(user=asha.user, transaction_id=str(txn["_id"]), reason="WRONG_ACCOUNT")
    proposal = services.reversal_propose(
        staff=maker, transaction_id=str(txn["_id"]), amount_paise=2_500, dispute_id=str(dispute["_id"])
    )
    services.reversal_approve(staff=checker, proposal_id=str(proposal["_id"]), note="internal: typo confirmed")
    drain(Dispatcher())

    short = f"…{str(txn['_id'])[-6:]}"
    told = messages(asha.user)
    assert ("info", f"We received your dispute about transaction {short}; staff will review it.") in told
    assert ("info", f"Your dispute about transaction {short} is under review.") in told
    assert ("success", "₹25.00 was returned to you (a reversal).") in told
    assert ("success", f"Your dispute about transaction {short} was resolved: the money was returned.") in told
    assert not any("internal" in message for _level, message in told)  # the checker's note stays with staff
    reversed_out = [m for level, m in messages(ravi.user) if level == "warning"]
    assert reversed_out == [f"₹25.00 was reversed out of your account, back to account …{str(asha.pk)[-6:]} "
                            "(a dispute or a correction by Aegis staff)."]  # fmt: skip


def test_a_rejected_dispute_tells_the_customer_why(fund):
    asha, ravi = make_account(), make_account()
    fund(asha, 10_000)
    txn = send(asha, ravi, 2_500, "k1").transaction
    dispute = services.dispute_open(user=asha.user, transaction_id=str(txn["_id"]), reason="NOT_RECEIVED")
    services.dispute_reject(
        staff=make_user(role=Role.ADMIN), dispute_id=str(dispute["_id"]), answer="It arrived on 1 Dec."
    )
    drain(Dispatcher())
    short = f"…{str(txn['_id'])[-6:]}"
    assert ("warning", f"Your dispute about transaction {short} was rejected. It arrived on 1 Dec.") in messages(
        asha.user
    )


def test_a_failed_reversal_tells_nobody_that_their_transfer_failed(fund):
    """The receiver never sent the reversal: its failure (they spent the money) is for staff to
    retry or cancel, not a "your transfer failed" notice."""
    asha, ravi = make_account(), make_account()
    fund(asha, 10_000)
    txn = send(asha, ravi, 2_500, "k1").transaction
    send(ravi, asha, 2_000, "spent")
    maker, checker = make_user(role=Role.ADMIN), make_user(role=Role.ADMIN)
    proposal = services.reversal_propose(staff=maker, transaction_id=str(txn["_id"]), amount_paise=2_500)
    assert services.reversal_approve(staff=checker, proposal_id=str(proposal["_id"]))["state"] == "FAILED"
    drain(Dispatcher())
    assert not any("failed" in message for _level, message in messages(ravi.user) + messages(asha.user))
