"""Disputes and reversals over the JSON API, against the real embedded server.

A customer disputes a transfer (and is refused a second open dispute, a failed transfer, a
funding, someone else's and a too old one); staff propose and approve under maker-checker with
their password on every decision; full and partial reversals move the money once, linked both
ways, and resolve the dispute; rejection and expiry give the amount back; a reversal refused for
lack of funds is FAILED, keeps the dispute open and completes once on retry. Every money test
ends with a clean reconcile.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId
from django.test import override_settings

from accounts.models import Account, Role
from aegis.clock import now_ms
from aegis.mongo import collection
from disputes.models import Dispute, ReversalProposal
from ledger.models import AuditAction, AuditLog
from ledger.reconcile import ledger_reconcile
from tests.accounts.conftest import ApiClient, api_as
from tests.factories import PASSWORD, make_account, make_user
from transfers import exceptions as exc
from transfers.models import Transaction, TransactionKind, TransactionStatus
from transfers.services import transfer_create

pytestmark = pytest.mark.usefixtures("generous_limits")


@pytest.fixture
def generous_limits():
    with override_settings(AEGIS_RATELIMIT_GLOBAL="100000/15m", AEGIS_RATELIMIT_STRICT="100000/15m"):
        yield


def transfer(sender, receiver, paise: int, key: str) -> dict:
    try:
        return transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(receiver.pk),
            amount_paise=paise,
            idempotency_key=key,
        ).transaction
    except exc.TransferFailed as failure:
        return failure.transaction


def balance(account) -> int:
    return Account.objects.get(pk=account.pk).balance


def txn(transaction_id) -> dict:
    return collection(Transaction).find_one({"_id": ObjectId(str(transaction_id))})


def reconciled() -> bool:
    return ledger_reconcile().ok


@pytest.fixture
def world(fund):
    """A customer who sent ₹1,000 to a receiver, two staff members and their clients."""
    sender = fund(make_account(user=make_user(name="Sender")), 500_000)
    receiver = make_account(user=make_user(name="Receiver"))
    original = transfer(sender, receiver, 100_000, "pay-1")
    maker, checker = make_user(role=Role.ADMIN, name="Maker"), make_user(role=Role.ADMIN, name="Checker")
    return {
        "sender": sender,
        "receiver": receiver,
        "original": original,
        "customer": api_as(sender.user),
        "maker": api_as(maker),
        "checker": api_as(checker),
        "maker_user": maker,
        "checker_user": checker,
    }


def open_dispute(client, transaction_id, reason="WRONG_ACCOUNT", note="typo in the account"):
    return client.post("/api/disputes", {"transactionId": str(transaction_id), "reason": reason, "note": note})


def propose(client, transaction_id, amount, dispute_id=None, note="customer asked"):
    body = {"transactionId": str(transaction_id), "amount": amount, "note": note}
    if dispute_id:
        body["disputeId"] = dispute_id
    return client.post("/api/admin/reversals", body)


def decide(client, proposal_id, action, password=PASSWORD, **body):
    return client.post(f"/api/admin/reversals/{proposal_id}/{action}", {"password": password, **body})


# --- the customer's side ---------------------------------------------------------------------------
def test_a_customer_disputes_a_transfer_they_sent(world):
    customer, original = world["customer"], world["original"]
    response = open_dispute(customer, original["_id"])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["success"] is True
    dispute = body["dispute"]
    assert dispute["transactionId"] == str(original["_id"])
    assert (dispute["state"], dispute["reason"], dispute["note"], dispute["answer"]) == (
        "OPEN",
        "WRONG_ACCOUNT",
        "typo in the account",
        "",
    )
    assert dispute["openedAt"].endswith("+00:00") and dispute["resolvedAt"] is None

    again = open_dispute(customer, original["_id"], reason="FRAUD")
    assert again.status_code == 409 and again.json()["code"] == "dispute_exists"
    assert collection(Dispute).count_documents({}) == 1

    listed = customer.get("/api/disputes").json()
    assert [d["_id"] for d in listed["disputes"]] == [dispute["_id"]]
    detail = customer.get(f"/api/disputes/{dispute['_id']}").json()["dispute"]
    assert detail["state"] == "OPEN" and detail["proposals"] == []


def test_newest_dispute_first(world, fund):
    second = transfer(world["sender"], world["receiver"], 5_000, "pay-2")
    first_id = open_dispute(world["customer"], world["original"]["_id"]).json()["dispute"]["_id"]
    second_id = open_dispute(world["customer"], second["_id"], reason="OTHER").json()["dispute"]["_id"]
    listed = world["customer"].get("/api/disputes").json()["disputes"]
    assert [d["_id"] for d in listed] == [second_id, first_id]


def test_what_cannot_be_disputed(world, bank, settings):
    customer, sender, receiver = world["customer"], world["sender"], world["receiver"]
    failed = transfer(sender, receiver, 900_000, "too-much")
    assert failed["status"] == TransactionStatus.FAILED
    refused = open_dispute(customer, failed["_id"])
    assert refused.status_code == 422 and refused.json()["code"] == "dispute_not_allowed"

    # A funding the customer received is not one they sent: as unknown as anyone else's.
    funding = collection(Transaction).find_one({"to_account_id": sender.pk, "kind": TransactionKind.SYSTEM_FUNDING})
    assert open_dispute(customer, funding["_id"]).status_code == 404
    # The system user did send it, but a funding is not a disputable transfer.
    system = api_as(bank.system_user)
    refused = open_dispute(system, funding["_id"])
    assert refused.status_code == 422 and refused.json()["code"] == "dispute_not_allowed"

    # The receiver did not send the original: 404, the same as an unknown id.
    assert open_dispute(api_as(receiver.user), world["original"]["_id"]).status_code == 404
    assert open_dispute(customer, "0" * 24).status_code == 404

    settings.AEGIS_DISPUTE_WINDOW_DAYS = 3
    old = transfer(sender, receiver, 1_000, "old-one")
    collection(Transaction).update_one({"_id": old["_id"]}, {"$set": {"completed_at": now_ms() - timedelta(days=4)}})
    refused = open_dispute(customer, old["_id"])
    assert refused.status_code == 422 and "within 3 days" in refused.json()["message"]
    assert collection(Dispute).count_documents({}) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "FRAUD"}, "transactionId"),
        ({"transactionId": "nope", "reason": "FRAUD"}, "transactionId"),
        ({"transactionId": "0" * 24, "reason": "BORED"}, "reason"),
        ({"transactionId": "0" * 24}, "reason"),
        ({"transactionId": "0" * 24, "reason": "OTHER", "note": "x" * 501}, "note"),
        ({"transactionId": "0" * 24, "reason": "OTHER", "note": 5}, "note"),
    ],
)
def test_a_malformed_dispute_is_400_naming_the_field(world, body, field):
    response = world["customer"].post("/api/disputes", body)
    assert response.status_code == 400
    assert response.json()["success"] is False and response.json()["field"] == field


def test_access(world):
    dispute_id = open_dispute(world["customer"], world["original"]["_id"]).json()["dispute"]["_id"]
    anonymous, other = ApiClient(), api_as(make_account().user)
    assert anonymous.get("/api/disputes").status_code == 401
    assert anonymous.post("/api/disputes", {}).json()["code"] in ("not_authenticated", "invalid_token")
    assert other.get(f"/api/disputes/{dispute_id}").status_code == 404
    assert other.get("/api/disputes/nonsense").status_code == 404
    assert other.get("/api/disputes").json()["disputes"] == []
    admin_routes = [
        ("get", "/api/admin/disputes"),
        ("get", f"/api/admin/disputes/{dispute_id}"),
        ("post", f"/api/admin/disputes/{dispute_id}/reject"),
        ("get", "/api/admin/reversals"),
        ("post", "/api/admin/reversals"),
        *[("post", f"/api/admin/reversals/{'0' * 24}/{a}") for a in ("approve", "reject", "retry", "cancel")],
    ]
    for method, path in admin_routes:
        as_customer = getattr(world["customer"], method)(path)
        assert as_customer.status_code == 403, path
        assert as_customer.json()["success"] is False
        assert getattr(anonymous, method)(path).status_code == 401, path
    # Staff see it through the queue.
    queue = world["maker"].get("/api/admin/disputes").json()["disputes"]
    assert [d["_id"] for d in queue] == [dispute_id]
    assert queue[0]["userId"] == str(world["sender"].user.pk)


# --- maker-checker --------------------------------------------------------------------------------
def test_full_reversal_with_maker_checker(world):
    sender, receiver, original = world["sender"], world["receiver"], world["original"]
    dispute_id = open_dispute(world["customer"], original["_id"]).json()["dispute"]["_id"]
    made = propose(world["maker"], original["_id"], 1000, dispute_id)
    assert made.status_code == 201, made.json()
    proposal = made.json()["proposal"]
    assert proposal["state"] == "PENDING" and proposal["amount"] == 1000
    assert proposal["proposedBy"] == str(world["maker_user"].pk) and proposal["disputeId"] == dispute_id
    assert world["customer"].get(f"/api/disputes/{dispute_id}").json()["dispute"]["state"] == "UNDER_REVIEW"
    pending = world["checker"].get("/api/admin/reversals").json()["proposals"]
    assert [p["_id"] for p in pending] == [proposal["_id"]]

    # The maker cannot be the checker, even with the right password.
    own = decide(world["maker"], proposal["_id"], "approve")
    assert own.status_code == 403 and own.json()["code"] == "forbidden"
    # A wrong password refuses the checker too, and nothing changes.
    wrong = decide(world["checker"], proposal["_id"], "approve", password="not my password")
    assert wrong.status_code == 403 and wrong.json()["code"] == "password_incorrect"
    missing = world["checker"].post(f"/api/admin/reversals/{proposal['_id']}/approve", {"note": "ok"})
    assert missing.status_code == 400 and missing.json()["field"] == "password"
    assert collection(ReversalProposal).find_one({})["state"] == "PENDING"
    assert (balance(sender), balance(receiver)) == (400_000, 100_000)

    approved = decide(world["checker"], proposal["_id"], "approve", note="confirmed with the receiver's bank")
    assert approved.status_code == 200, approved.json()
    done = approved.json()["proposal"]
    assert done["state"] == "EXECUTED" and done["decidedBy"] == str(world["checker_user"].pk)
    assert (balance(sender), balance(receiver)) == (500_000, 0)

    reversal = txn(done["reversalId"])
    assert reversal["kind"] == TransactionKind.REVERSAL and reversal["status"] == TransactionStatus.COMPLETED
    assert reversal["reverses_id"] == original["_id"] and reversal["amount"] == 100_000
    after = txn(original["_id"])
    assert after["reversed_by"] == [reversal["_id"]] and after["reversed_amount"] == 100_000

    seen = world["customer"].get(f"/api/disputes/{dispute_id}").json()["dispute"]
    # The bank's answer, never the checker's internal note.
    assert seen["state"] == "RESOLVED_REVERSED" and seen["answer"] == "₹1,000.00 was returned to your account."
    assert seen["resolvedAt"] is not None
    assert seen["proposals"] == [
        {
            "state": "EXECUTED",
            "amount": 1000,
            "proposedAt": done["proposedAt"],
            "updatedAt": seen["proposals"][0]["updatedAt"],
        }
    ]

    staff_view = world["checker"].get(f"/api/admin/disputes/{dispute_id}").json()
    assert staff_view["transaction"]["reversedBy"] == [str(reversal["_id"])]
    assert staff_view["transaction"]["reversedAmount"] == 1000 and staff_view["transaction"]["reversibleLeft"] == 0
    assert [p["state"] for p in staff_view["proposals"]] == ["EXECUTED"]
    # Approving again is a conflict, and moves nothing.
    twice = decide(world["checker"], proposal["_id"], "approve")
    assert twice.status_code == 409 and twice.json()["code"] == "proposal_decided"
    assert balance(sender) == 500_000
    assert reconciled()


def test_partial_reversal_and_what_is_left(world):
    original = world["original"]
    dispute_id = open_dispute(world["customer"], original["_id"]).json()["dispute"]["_id"]
    proposal = propose(world["maker"], original["_id"], "400.50", dispute_id).json()["proposal"]
    too_much = propose(world["maker"], original["_id"], 600)  # 599.50 is left
    assert too_much.status_code == 422 and too_much.json()["code"] == "reversal_too_large"
    assert "599.50" in too_much.json()["message"]

    done = decide(world["checker"], proposal["_id"], "approve").json()["proposal"]
    assert done["state"] == "EXECUTED"
    assert (balance(world["sender"]), balance(world["receiver"])) == (440_050, 59_950)
    seen = world["customer"].get(f"/api/disputes/{dispute_id}").json()["dispute"]
    assert seen["state"] == "RESOLVED_PARTIAL" and seen["proposals"][0]["amount"] == 400.5
    assert txn(original["_id"])["reversed_amount"] == 40_050
    assert reconciled()


def test_reject_releases_the_amount(world):
    original = world["original"]
    first = propose(world["maker"], original["_id"], 1000).json()["proposal"]
    assert propose(world["checker"], original["_id"], 1).status_code == 422

    wrong = decide(world["checker"], first["_id"], "reject", password="nope", note="x")
    assert wrong.status_code == 403 and collection(ReversalProposal).find_one({})["state"] == "PENDING"
    rejected = decide(world["maker"], first["_id"], "reject", note="withdrawn: wrong amount")  # the maker may withdraw
    assert rejected.status_code == 200
    assert rejected.json()["proposal"]["state"] == "REJECTED"
    assert rejected.json()["proposal"]["decisionNote"] == "withdrawn: wrong amount"
    assert decide(world["checker"], first["_id"], "reject").json()["code"] == "proposal_decided"

    again = propose(world["checker"], original["_id"], 1000)
    assert again.status_code == 201
    assert world["maker"].get("/api/admin/reversals").json()["proposals"][0]["_id"] == again.json()["proposal"]["_id"]
    assert balance(world["receiver"]) == 100_000  # nothing moved
    assert reconciled()


def test_dispute_rejected_with_an_answer(world):
    original = world["original"]
    dispute_id = open_dispute(world["customer"], original["_id"]).json()["dispute"]["_id"]
    proposal = propose(world["maker"], original["_id"], 1000, dispute_id).json()["proposal"]
    path = f"/api/admin/disputes/{dispute_id}/reject"
    body = {"answer": "The receiver confirmed the goods were delivered.", "password": PASSWORD}
    live = world["checker"].post(path, body)
    assert live.status_code == 422  # its proposal could still move money
    decide(world["checker"], proposal["_id"], "reject")

    wrong = world["checker"].post(path, {**body, "password": "guess"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "password_incorrect"
    assert world["checker"].post(path, {"password": PASSWORD}).json()["field"] == "answer"
    rejected = world["checker"].post(path, body)
    assert rejected.status_code == 200 and rejected.json()["dispute"]["state"] == "REJECTED"
    seen = world["customer"].get(f"/api/disputes/{dispute_id}").json()["dispute"]
    assert seen["state"] == "REJECTED" and seen["answer"] == body["answer"]
    assert [p["state"] for p in seen["proposals"]] == ["REJECTED"]
    assert "proposedBy" not in seen["proposals"][0]
    # Closed, the transfer may be disputed again.
    assert open_dispute(world["customer"], original["_id"]).status_code == 201
    assert world["maker"].get("/api/admin/disputes?state=REJECTED").json()["disputes"][0]["_id"] == dispute_id


def test_an_expired_proposal_cannot_be_approved(world, settings):
    settings.AEGIS_REVERSAL_PROPOSAL_HOURS = 0
    proposal = propose(world["maker"], world["original"]["_id"], 1000).json()["proposal"]
    refused = decide(world["checker"], proposal["_id"], "approve")
    assert refused.status_code == 422 and refused.json()["code"] == "proposal_expired"
    assert collection(ReversalProposal).find_one({})["state"] == "EXPIRED"
    assert balance(world["receiver"]) == 100_000

    settings.AEGIS_REVERSAL_PROPOSAL_HOURS = 24
    fresh = propose(world["maker"], world["original"]["_id"], 1000).json()["proposal"]  # the amount is free again
    collection(ReversalProposal).update_one(
        {"_id": ObjectId(fresh["_id"])}, {"$set": {"expires_at": now_ms() - timedelta(minutes=1)}}
    )
    assert world["checker"].get("/api/admin/reversals").json()["proposals"] == []  # swept on listing
    assert world["checker"].get("/api/admin/reversals?state=PENDING").json()["proposals"] == []
    history = world["checker"].get(f"/api/admin/reversals?transactionId={world['original']['_id']}").json()
    assert [p["state"] for p in history["proposals"]] == ["EXPIRED", "EXPIRED"]
    assert world["checker"].get("/api/admin/reversals?state=EXECUTED").status_code == 400
    assert reconciled()


def test_failed_reversal_keeps_the_dispute_open_and_retries_once(world, fund):
    sender, receiver, original = world["sender"], world["receiver"], world["original"]
    dispute_id = open_dispute(world["customer"], original["_id"]).json()["dispute"]["_id"]
    transfer(receiver, make_account(), 90_000, "spent-it")  # the receiver has ₹100 left
    proposal = propose(world["maker"], original["_id"], 1000, dispute_id).json()["proposal"]

    failed = decide(world["checker"], proposal["_id"], "approve")
    assert failed.status_code == 200
    body = failed.json()["proposal"]
    assert body["state"] == "FAILED" and "Insufficient funds" in body["failureReason"]
    assert "failed" in failed.json()["message"]
    assert world["customer"].get(f"/api/disputes/{dispute_id}").json()["dispute"]["state"] == "UNDER_REVIEW"
    assert (balance(sender), balance(receiver)) == (400_000, 10_000)

    assert decide(world["maker"], proposal["_id"], "retry").status_code == 403  # not the maker
    assert decide(world["checker"], proposal["_id"], "retry", password="x").status_code == 403
    fund(receiver, 90_000)
    retried = decide(world["checker"], proposal["_id"], "retry")
    assert retried.status_code == 200 and retried.json()["proposal"]["state"] == "EXECUTED"
    again = decide(world["checker"], proposal["_id"], "retry")
    assert again.status_code == 409
    assert (balance(sender), balance(receiver)) == (500_000, 0)
    reversals = list(collection(Transaction).find({"kind": TransactionKind.REVERSAL}))
    assert [r["status"] for r in reversals] == [TransactionStatus.COMPLETED]  # one record, retried in place
    assert txn(original["_id"])["reversed_amount"] == 100_000
    assert world["customer"].get(f"/api/disputes/{dispute_id}").json()["dispute"]["state"] == "RESOLVED_REVERSED"
    assert reconciled()


def test_a_failed_reversal_cancelled(world):
    original, receiver = world["original"], world["receiver"]
    transfer(receiver, make_account(), 100_000, "all-gone")
    proposal = propose(world["maker"], original["_id"], 1000).json()["proposal"]
    assert decide(world["checker"], proposal["_id"], "approve").json()["proposal"]["state"] == "FAILED"
    cancelled = decide(world["maker"], proposal["_id"], "cancel", note="recovered offline")
    assert cancelled.status_code == 200 and cancelled.json()["proposal"]["state"] == "CANCELLED"
    assert propose(world["maker"], original["_id"], 1000).status_code == 201  # released
    assert reconciled()


def test_an_erroneous_funding_reversed_without_a_dispute(world, bank):
    sender = world["sender"]
    funding = collection(Transaction).find_one({"to_account_id": sender.pk, "kind": TransactionKind.SYSTEM_FUNDING})
    system_before = balance(Account.objects.get(user=bank.system_user))
    proposal = propose(world["maker"], funding["_id"], 500, note="funded twice by mistake").json()["proposal"]
    done = decide(world["checker"], proposal["_id"], "approve").json()["proposal"]
    assert done["state"] == "EXECUTED" and done["disputeId"] is None
    assert balance(sender) == 350_000
    assert balance(Account.objects.get(user=bank.system_user)) == system_before + 50_000
    # A reversal is not a transfer the customer can dispute.
    refused = open_dispute(world["customer"], done["reversalId"])
    assert refused.status_code == 422 and refused.json()["code"] == "dispute_not_allowed"
    assert propose(world["maker"], done["reversalId"], 1).status_code == 422  # nor can it be reversed
    assert reconciled()


def test_wrong_passwords_count_against_the_login_limit(world, settings):
    settings.AEGIS_RATELIMIT_LOGIN = "2/15m"
    proposal = propose(world["maker"], world["original"]["_id"], 1000).json()["proposal"]
    for _ in range(2):
        assert decide(world["checker"], proposal["_id"], "approve", password="guess").status_code == 403
    limited = decide(world["checker"], proposal["_id"], "approve")  # even the right one, now
    assert limited.status_code == 429 and limited.json()["success"] is False
    assert collection(ReversalProposal).find_one({})["state"] == "PENDING"
    failures = collection(AuditLog).count_documents({"action": AuditAction.LOGIN_FAILED})
    assert failures >= 2
    assert balance(world["receiver"]) == 100_000


@pytest.mark.parametrize(
    ("query", "field"), [("state=NOPE", "state"), ("minAgeDays=-1", "minAgeDays"), ("minAgeDays=x", "minAgeDays")]
)
def test_queue_filters_are_checked(world, query, field):
    response = world["maker"].get(f"/api/admin/disputes?{query}")
    assert response.status_code == 400 and response.json()["field"] == field


def test_queue_by_age_oldest_first(world):
    first = open_dispute(world["customer"], world["original"]["_id"]).json()["dispute"]["_id"]
    other = transfer(world["sender"], world["receiver"], 1_000, "pay-3")
    second = open_dispute(world["customer"], other["_id"]).json()["dispute"]["_id"]
    collection(Dispute).update_one({"_id": ObjectId(first)}, {"$set": {"opened_at": now_ms() - timedelta(days=5)}})
    queue = world["maker"].get("/api/admin/disputes").json()["disputes"]
    assert [d["_id"] for d in queue] == [first, second]
    aged = world["maker"].get("/api/admin/disputes?minAgeDays=2&state=OPEN").json()["disputes"]
    assert [d["_id"] for d in aged] == [first]
