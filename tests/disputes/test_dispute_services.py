"""Disputes, reversal proposals and maker-checker, through the services, against the real server.

The money claims end with `reconcile`; the concurrent ones (separate OS processes) are in
test_reversal_concurrency.py.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from bson import ObjectId
from django.core.management import call_command

from accounts.models import AccountStatus, Role
from accounts.services import account_set_status
from aegis.errors import NotFound, PermissionDenied, ValidationFailed
from aegis.mongo import collection
from disputes import services
from disputes.models import Dispute, DisputeState, ProposalState, ReversalProposal, ReversalReservation
from disputes.selectors import dispute_of_transaction, reversible_left
from ledger.models import AuditLog, LedgerEntry
from ledger.reconcile import ledger_reconcile
from statements.selectors import receipt_for
from tests.factories import make_account, make_user
from transfers import exceptions as exc
from transfers.models import Transaction, TransactionKind
from transfers.services import reversal_execute, transfer_create


def send(sender, receiver, paise: int, key: str):
    return transfer_create(
        actor=sender.user, from_account_id=str(sender.pk), to_account_id=str(receiver.pk),
        amount_paise=paise, idempotency_key=key,
    ).transaction  # fmt: skip


def balances(*accounts) -> list[int]:
    for account in accounts:
        account.refresh_from_db()
    return [account.balance for account in accounts]


def assert_reconciled() -> None:
    report = ledger_reconcile()
    assert report.ok, report.summary()


@pytest.fixture
def people(fund):
    """A sender who paid a receiver ₹1,000, and two staff members (a maker and a checker)."""
    sender = make_account(user=make_user(name="Asha Verma"))
    receiver = make_account(user=make_user(name="Ravi Kumar"))
    fund(sender, 500_000)
    txn = send(sender, receiver, 100_000, "pay-1")
    maker = make_user(role=Role.ADMIN, name="Maker")
    checker = make_user(role=Role.ADMIN, name="Checker")
    return {"sender": sender, "receiver": receiver, "txn": txn, "maker": maker, "checker": checker}


def test_a_disputed_transfer_is_reversed_in_full_once_a_second_staff_member_approves(people):
    sender, receiver, txn = people["sender"], people["receiver"], people["txn"]
    dispute = services.dispute_open(
        user=sender.user, transaction_id=str(txn["_id"]), reason="WRONG_ACCOUNT", note="typo"
    )
    assert dispute["state"] == DisputeState.OPEN
    proposal = services.reversal_propose(
        staff=people["maker"], transaction_id=str(txn["_id"]), amount_paise=100_000, dispute_id=str(dispute["_id"])
    )
    assert collection(Dispute).find_one({"_id": dispute["_id"]})["state"] == DisputeState.UNDER_REVIEW
    assert balances(sender, receiver) == [400_000, 100_000]  # nothing moves on a proposal

    with pytest.raises(PermissionDenied):
        services.reversal_approve(staff=people["maker"], proposal_id=str(proposal["_id"]))
    assert balances(sender, receiver) == [400_000, 100_000]

    done = services.reversal_approve(staff=people["checker"], proposal_id=str(proposal["_id"]), note="Confirmed typo")
    assert done["state"] == ProposalState.EXECUTED
    assert balances(sender, receiver) == [500_000, 0]
    reversal = collection(Transaction).find_one({"_id": ObjectId(done["reversal_id"])})
    original = collection(Transaction).find_one({"_id": txn["_id"]})
    assert (reversal["kind"], reversal["reverses_id"], reversal["status"]) == ("REVERSAL", txn["_id"], "COMPLETED")
    assert (reversal["from_account_id"], reversal["to_account_id"]) == (receiver.pk, sender.pk)
    assert (original["reversed_amount"], original["reversed_by"]) == (100_000, [reversal["_id"]])
    assert (reversal["initiated_by"], reversal["requested_by"]) == (str(people["checker"].pk), str(people["maker"].pk))
    resolved = collection(Dispute).find_one({"_id": dispute["_id"]})
    # The customer reads the bank's answer; the checker's note stays internal.
    assert (resolved["state"], resolved["staff_answer"]) == (
        DisputeState.RESOLVED_REVERSED,
        "₹1,000.00 was returned to your account.",
    )
    assert dispute_of_transaction(transaction_id=str(txn["_id"])) is None  # no longer open
    actions = [a.action for a in AuditLog.objects.filter(transaction_id=str(txn["_id"])).order_by("created_at")]
    for action in ("DISPUTE_OPENED", "REVERSAL_PROPOSED", "REVERSAL_APPROVED", "DISPUTE_RESOLVED"):
        assert action in actions
    # Approving again, or retrying, moves nothing more.
    with pytest.raises(services.ProposalDecided):
        services.reversal_approve(staff=people["checker"], proposal_id=str(proposal["_id"]))
    assert balances(sender, receiver) == [500_000, 0]
    assert_reconciled()


def test_partial_reversals_never_add_up_past_the_original(people):
    txn, maker, checker = people["txn"], people["maker"], people["checker"]
    first = services.reversal_propose(staff=maker, transaction_id=str(txn["_id"]), amount_paise=60_000)
    with pytest.raises(services.ReversalTooLarge) as refused:
        services.reversal_propose(staff=maker, transaction_id=str(txn["_id"]), amount_paise=40_001)
    assert "₹400.00" in refused.value.message
    second = services.reversal_propose(staff=checker, transaction_id=str(txn["_id"]), amount_paise=40_000)
    assert reversible_left(original=txn) == 0
    services.reversal_approve(staff=checker, proposal_id=str(first["_id"]))
    services.reversal_approve(staff=maker, proposal_id=str(second["_id"]))
    original = collection(Transaction).find_one({"_id": txn["_id"]})
    assert original["reversed_amount"] == original["amount"] == 100_000
    assert balances(people["sender"], people["receiver"]) == [500_000, 0]
    assert_reconciled()


def test_the_engine_itself_refuses_a_reversal_past_the_original(people, fund):
    """Whatever a caller does, the money transaction never takes the reversed total past the
    original: one more rupee under another key is recorded FAILED and moves nothing, though
    the receiver could pay it."""
    txn, maker, checker = people["txn"], people["maker"], people["checker"]
    reversal_execute(
        approver=checker, requested_by=maker, original_id=txn["_id"], amount_paise=100_000, idempotency_key="r-a"
    )
    fund(people["receiver"], 10_000)
    with pytest.raises(exc.TransferFailed) as refused:
        reversal_execute(
            approver=checker, requested_by=maker, original_id=txn["_id"], amount_paise=1, idempotency_key="r-b"
        )
    assert refused.value.code == "reversal_exceeds_original"
    assert collection(LedgerEntry).count_documents({"transaction_id": refused.value.transaction["_id"]}) == 0
    assert balances(people["sender"], people["receiver"]) == [500_000, 10_000]
    with pytest.raises(PermissionDenied):  # a customer can never run one
        reversal_execute(
            approver=people["sender"].user,
            requested_by=maker,
            original_id=txn["_id"],
            amount_paise=1,
            idempotency_key="r-c",
        )
    assert_reconciled()


def test_rejected_and_expired_proposals_free_their_amount(people, settings):
    txn, maker, checker = people["txn"], people["maker"], people["checker"]
    rejected = services.reversal_propose(staff=maker, transaction_id=str(txn["_id"]), amount_paise=100_000)
    services.reversal_reject(staff=checker, proposal_id=str(rejected["_id"]), note="not needed")
    assert reversible_left(original=txn) == 100_000
    with pytest.raises(services.ProposalDecided):
        services.reversal_approve(staff=checker, proposal_id=str(rejected["_id"]))

    stale = services.reversal_propose(staff=maker, transaction_id=str(txn["_id"]), amount_paise=100_000)
    collection(ReversalProposal).update_one(
        {"_id": stale["_id"]}, {"$set": {"expires_at": stale["proposed_at"] - timedelta(seconds=1)}}
    )
    with pytest.raises(services.ProposalExpired):
        services.reversal_approve(staff=checker, proposal_id=str(stale["_id"]))
    assert collection(ReversalProposal).find_one({"_id": stale["_id"]})["state"] == ProposalState.EXPIRED
    assert reversible_left(original=txn) == 100_000
    assert collection(ReversalReservation).find_one({"original_id": txn["_id"]})["reserved"] == 0
    assert balances(people["sender"], people["receiver"]) == [400_000, 100_000]
    assert_reconciled()


def test_a_reversal_the_receiver_cannot_pay_fails_keeps_the_dispute_open_and_completes_once_retried(people, fund):
    sender, receiver, txn = people["sender"], people["receiver"], people["txn"]
    send(receiver, sender, 70_000, "spent")  # the receiver spends most of it
    dispute = services.dispute_open(user=sender.user, transaction_id=str(txn["_id"]), reason="FRAUD")
    proposal = services.reversal_propose(
        staff=people["maker"], transaction_id=str(txn["_id"]), amount_paise=100_000, dispute_id=str(dispute["_id"])
    )
    failed = services.reversal_approve(staff=people["checker"], proposal_id=str(proposal["_id"]))
    assert failed["state"] == ProposalState.FAILED and "Insufficient funds" in failed["failure_reason"]
    assert collection(Dispute).find_one({"_id": dispute["_id"]})["state"] == DisputeState.UNDER_REVIEW
    assert balances(sender, receiver) == [470_000, 30_000]
    with pytest.raises(PermissionDenied):  # the maker cannot push it through either
        services.reversal_retry(staff=people["maker"], proposal_id=str(proposal["_id"]))

    fund(receiver, 70_000)
    done = services.reversal_retry(staff=people["checker"], proposal_id=str(proposal["_id"]))
    assert done["state"] == ProposalState.EXECUTED
    again = services.reversal_retry  # a second retry is refused: it is done
    with pytest.raises(services.ProposalDecided):
        again(staff=people["checker"], proposal_id=str(proposal["_id"]))
    assert balances(sender, receiver) == [570_000, 0]
    assert collection(Transaction).count_documents({"kind": TransactionKind.REVERSAL, "status": "COMPLETED"}) == 1
    assert collection(Dispute).find_one({"_id": dispute["_id"]})["state"] == DisputeState.RESOLVED_REVERSED
    assert_reconciled()


def test_a_failed_reversal_can_be_cancelled_and_the_dispute_rejected(people):
    sender, receiver, txn = people["sender"], people["receiver"], people["txn"]
    send(receiver, sender, 100_000, "all-gone")
    dispute = services.dispute_open(user=sender.user, transaction_id=str(txn["_id"]), reason="NOT_RECEIVED")
    proposal = services.reversal_propose(
        staff=people["maker"], transaction_id=str(txn["_id"]), amount_paise=50_000, dispute_id=str(dispute["_id"])
    )
    with pytest.raises(Exception, match="proposals first"):
        services.dispute_reject(staff=people["checker"], dispute_id=str(dispute["_id"]), answer="no")
    assert services.reversal_approve(staff=people["checker"], proposal_id=str(proposal["_id"]))["state"] == "FAILED"
    services.reversal_cancel(staff=people["checker"], proposal_id=str(proposal["_id"]), note="paid back in cash")
    assert reversible_left(original=txn) == 100_000
    rejected = services.dispute_reject(
        staff=people["checker"], dispute_id=str(dispute["_id"]), answer="Settled in cash."
    )
    assert (rejected["state"], rejected["staff_answer"]) == (DisputeState.REJECTED, "Settled in cash.")
    # Closed: the customer may open a new dispute on the same transfer.
    again = services.dispute_open(user=sender.user, transaction_id=str(txn["_id"]), reason="OTHER")
    assert again["state"] == DisputeState.OPEN
    assert_reconciled()


def test_a_reversal_takes_from_and_returns_to_frozen_accounts(people):
    """Freezing stops the customer (a fraudster's account is frozen), not the bank's correction."""
    sender, receiver, txn = people["sender"], people["receiver"], people["txn"]
    account_set_status(account=receiver, actor=people["checker"], new_status=AccountStatus.FROZEN)
    proposal = services.reversal_propose(staff=people["maker"], transaction_id=str(txn["_id"]), amount_paise=100_000)
    assert services.reversal_approve(staff=people["checker"], proposal_id=str(proposal["_id"]))["state"] == "EXECUTED"
    assert balances(sender, receiver) == [500_000, 0]
    assert_reconciled()


def test_an_erroneous_funding_is_reversed_to_the_system_account(bank, fund, people):
    customer = make_account()
    fund(customer, 25_000)
    funding = collection(Transaction).find_one({"to_account_id": customer.pk, "kind": TransactionKind.SYSTEM_FUNDING})
    proposal = services.reversal_propose(staff=people["maker"], transaction_id=str(funding["_id"]), amount_paise=25_000)
    assert services.reversal_approve(staff=people["checker"], proposal_id=str(proposal["_id"]))["state"] == "EXECUTED"
    assert balances(customer) == [0]
    assert_reconciled()


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"reason": "BORED"}, ValidationFailed, "reason must be one of"),
        ({"note": "x" * 501}, ValidationFailed, "at most 500"),
    ],
)
def test_bad_dispute_input_is_refused(people, change, error, words):
    args = {"user": people["sender"].user, "transaction_id": str(people["txn"]["_id"]), "reason": "OTHER", "note": ""}
    with pytest.raises(error, match=words):
        services.dispute_open(**(args | change))
    assert collection(Dispute).count_documents({}) == 0


def test_who_may_dispute_what(people, settings, fund):
    sender, receiver, txn = people["sender"], people["receiver"], people["txn"]
    with pytest.raises(NotFound):  # the receiver did not send it
        services.dispute_open(user=receiver.user, transaction_id=str(txn["_id"]), reason="OTHER")
    with pytest.raises(NotFound):
        services.dispute_open(user=sender.user, transaction_id="nope", reason="OTHER")
    funding = collection(Transaction).find_one({"to_account_id": sender.pk, "kind": TransactionKind.SYSTEM_FUNDING})
    with pytest.raises(NotFound):  # the system account sent it, not the customer
        services.dispute_open(user=sender.user, transaction_id=str(funding["_id"]), reason="OTHER")
    with pytest.raises(exc.TransferFailed) as failed:
        send(sender, receiver, 900_000, "too-much")
    with pytest.raises(services.DisputeNotAllowed, match="completed"):
        services.dispute_open(user=sender.user, transaction_id=str(failed.value.transaction["_id"]), reason="OTHER")
    services.dispute_open(user=sender.user, transaction_id=str(txn["_id"]), reason="OTHER")
    with pytest.raises(services.DisputeExists):
        services.dispute_open(user=sender.user, transaction_id=str(txn["_id"]), reason="FRAUD")
    old = send(sender, receiver, 1_000, "old")
    collection(Transaction).update_one(
        {"_id": old["_id"]}, {"$set": {"completed_at": old["completed_at"] - timedelta(days=61)}}
    )
    with pytest.raises(services.DisputeNotAllowed, match="within 60 days"):
        services.dispute_open(user=sender.user, transaction_id=str(old["_id"]), reason="OTHER")
    with pytest.raises(PermissionDenied):
        services.reversal_propose(staff=sender.user, transaction_id=str(txn["_id"]), amount_paise=1)


def test_the_expiry_command_frees_what_unattended_proposals_reserved(people):
    txn = people["txn"]
    proposal = services.reversal_propose(staff=people["maker"], transaction_id=str(txn["_id"]), amount_paise=100_000)
    with pytest.raises(services.ReversalTooLarge):  # the whole amount is reserved: nothing else fits
        services.reversal_propose(staff=people["checker"], transaction_id=str(txn["_id"]), amount_paise=1)
    collection(ReversalProposal).update_one(
        {"_id": proposal["_id"]}, {"$set": {"expires_at": proposal["proposed_at"] - timedelta(minutes=1)}}
    )
    out = StringIO()
    call_command("expire_reversal_proposals", stdout=out)
    assert out.getvalue().strip() == "expired 1 proposal(s)"
    assert collection(ReversalProposal).find_one({"_id": proposal["_id"]})["state"] == ProposalState.EXPIRED
    assert reversible_left(original=txn) == 100_000
    assert AuditLog.objects.filter(action="REVERSAL_EXPIRED", transaction_id=str(txn["_id"])).count() == 1


def test_a_receipt_lists_only_settlements_not_the_dispute_steps(people):
    """The dispute and maker-checker steps are audited against the transfer too; its receipt's
    attempts are still only the engine's settlements (here: the one that completed it)."""
    sender, txn = people["sender"], people["txn"]
    dispute = services.dispute_open(user=sender.user, transaction_id=str(txn["_id"]), reason="OTHER")
    rejected = services.reversal_propose(
        staff=people["maker"], transaction_id=str(txn["_id"]), amount_paise=1_000, dispute_id=str(dispute["_id"])
    )
    services.reversal_reject(staff=people["checker"], proposal_id=str(rejected["_id"]))
    for viewer in (sender.user, people["checker"]):
        receipt = receipt_for(viewer=viewer, transaction_id=str(txn["_id"]))
        assert [a["status"] for a in receipt["attempts"]] == ["SUCCESS"], receipt["attempts"]
