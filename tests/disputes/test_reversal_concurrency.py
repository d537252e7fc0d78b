"""Reversals under real concurrency: staff and customers as separate OS processes against the real
server (tests/disputes/procs.py), a worker SIGKILLed inside the money transaction, and after each
test every invariant read back from the database (`assert_reversal_invariants`)."""

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Account, Role, User
from aegis.errors import PermissionDenied
from aegis.mongo import collection, get_client
from aegis.txn_sessions import sessions_of_dead_processes_end
from disputes import services
from disputes.models import RESERVING_STATES, Dispute, ProposalState, ReversalProposal, ReversalReservation
from ledger.models import AuditLog, LedgerEntry
from ledger.reconcile import ledger_reconcile
from tests.disputes.procs import run_workers, spawn
from tests.factories import make_account, make_user
from transfers.models import Transaction, TransactionKind, TransactionStatus
from transfers.services import transfer_create, transfers_recover_stale

pytestmark = pytest.mark.slow


def send(sender, receiver, paise: int, key: str) -> dict:
    return transfer_create(
        actor=sender.user, from_account_id=str(sender.pk), to_account_id=str(receiver.pk),
        amount_paise=paise, idempotency_key=key,
    ).transaction  # fmt: skip


def balances(*accounts) -> list[int]:
    for account in accounts:
        account.refresh_from_db()
    return [account.balance for account in accounts]


def assert_reversal_invariants(*, reconcile: bool = True) -> None:
    """What must hold whatever ran concurrently, read back from the database (`reconcile=False`
    skips the ledger walk, for a caller that knows no money service ran since the last one)."""
    if reconcile:
        report = ledger_reconcile()
        assert report.ok, report.summary()
        assert report.by_status.get("PROCESSING", 0) == 0, report.summary()

    system_users = [u["_id"] for u in collection(User).find({"is_system": True}, {"_id": 1})]
    system_accounts = {a["_id"] for a in collection(Account).find({"user_id": {"$in": system_users}}, {"_id": 1})}
    for account in collection(Account).find({}, {"balance": 1}):
        assert account["_id"] in system_accounts or account["balance"] >= 0, account
    negative = [e for e in collection(LedgerEntry).find({"balance_after": {"$lt": 0}})]
    assert all(e["account_id"] in system_accounts for e in negative), negative

    reversals = defaultdict(list)  # original id -> its COMPLETED reversals
    for txn in collection(Transaction).find({"kind": TransactionKind.REVERSAL}):
        if txn["status"] == TransactionStatus.COMPLETED:
            reversals[txn["reverses_id"]].append(txn)
    for original in collection(Transaction).find({"kind": {"$ne": TransactionKind.REVERSAL}}):
        done = reversals.get(original["_id"], [])
        reversed_amount = int(original.get("reversed_amount") or 0)
        assert reversed_amount <= original["amount"], original
        assert reversed_amount == sum(t["amount"] for t in done), (original, done)
        assert sorted(original.get("reversed_by") or []) == sorted(t["_id"] for t in done), original

    live = Counter()
    proposals = list(collection(ReversalProposal).find({}))
    for proposal in proposals:
        if proposal["state"] in RESERVING_STATES:
            live[proposal["original_id"]] += proposal["amount"]
        if proposal["state"] == ProposalState.EXECUTED:  # its money moved, by its own reversal
            reversal = collection(Transaction).find_one({"_id": _oid(proposal["reversal_id"])})
            assert reversal["status"] == TransactionStatus.COMPLETED, (proposal, reversal)
            assert reversal["idempotency_key"] == f"reversal-{proposal['_id']}"
            assert reversal["amount"] == proposal["amount"]
    for reservation in collection(ReversalReservation).find({}):
        assert reservation["reserved"] == live[reservation["original_id"]], reservation
        assert 0 <= reservation["reserved"] <= reservation["amount"], reservation
    # One reversal record per proposal (the key is derived from the decision), never a second.
    keys = Counter(t["idempotency_key"] for t in collection(Transaction).find({"kind": TransactionKind.REVERSAL}))
    assert all(n == 1 for n in keys.values()), keys
    assert set(keys) <= {f"reversal-{p['_id']}" for p in proposals}


def _oid(value):
    from bson import ObjectId

    return ObjectId(str(value))


@pytest.fixture
def people(fund):
    """A sender who paid a receiver ₹1,000 (the receiver's only money), a third account, and four
    staff members: two makers, two checkers."""
    sender, receiver, third = make_account(), make_account(), make_account()
    fund(sender, 500_000)
    txn = send(sender, receiver, 100_000, "pay-1")
    staff = [make_user(role=Role.ADMIN) for _ in range(4)]
    return {
        "sender": sender,
        "receiver": receiver,
        "third": third,
        "txn": txn,
        "maker": staff[0],
        "maker2": staff[1],
        "checker": staff[2],
        "checker2": staff[3],
    }


def propose(people, amount: int, *, maker="maker", dispute=None) -> dict:
    return services.reversal_propose(
        staff=people[maker], transaction_id=str(people["txn"]["_id"]), amount_paise=amount, dispute_id=dispute
    )


def test_two_approvers_at_once_reverse_once(people, subprocess_env):
    sender, receiver, txn = people["sender"], people["receiver"], people["txn"]
    proposal = propose(people, 100_000)
    approvers = [people["checker"], people["checker2"]]
    specs = [{"ops": [{"op": "approve", "staff": str(s.pk), "proposal": str(proposal["_id"])}]} for s in approvers]
    results = [lines[0] for lines in run_workers(specs, subprocess_env)]

    outcomes = Counter((r["outcome"], r.get("state") or r.get("code")) for r in results)
    assert outcomes == {("ok", "EXECUTED"): 1, ("error", "proposal_decided"): 1}, results
    winner = approvers[[r["outcome"] for r in results].index("ok")]
    stored = collection(ReversalProposal).find_one({"_id": proposal["_id"]})
    assert (stored["state"], stored["decided_by"]) == (ProposalState.EXECUTED, str(winner.pk))
    approvals = AuditLog.objects.filter(action="REVERSAL_APPROVED", transaction_id=str(txn["_id"]))
    assert [a.actor_id for a in approvals] == [str(winner.pk)]
    reversals = list(collection(Transaction).find({"kind": TransactionKind.REVERSAL}))
    assert [(r["status"], r["amount"]) for r in reversals] == [("COMPLETED", 100_000)]
    assert balances(sender, receiver) == [500_000, 0]
    assert collection(Transaction).find_one({"_id": txn["_id"]})["reversed_amount"] == 100_000
    assert_reversal_invariants()


def test_two_proposals_at_once_that_together_exceed_the_original_one_is_refused(people, subprocess_env):
    txn = people["txn"]
    specs = [
        {"ops": [{"op": "propose", "staff": str(people[m].pk), "transaction": str(txn["_id"]), "amount": 60_000}]}
        for m in ("maker", "maker2")
    ]
    results = [lines[0] for lines in run_workers(specs, subprocess_env)]

    outcomes = Counter((r["outcome"], r.get("state") or r.get("code")) for r in results)
    assert outcomes == {("ok", "PENDING"): 1, ("error", "reversal_too_large"): 1}, results
    assert collection(ReversalProposal).count_documents({}) == 1
    reservation = collection(ReversalReservation).find_one({"original_id": txn["_id"]})
    assert reservation["reserved"] == 60_000
    # What is left can still be proposed; one paisa more cannot.
    with pytest.raises(services.ReversalTooLarge):
        propose(people, 40_001)
    propose(people, 40_000, maker="maker2")
    assert collection(ReversalReservation).find_one({"original_id": txn["_id"]})["reserved"] == 100_000
    assert_reversal_invariants()


def test_a_reversal_racing_the_receiver_spending_never_overdraws(people, subprocess_env):
    sender, receiver, third, txn = people["sender"], people["receiver"], people["third"], people["txn"]
    dispute = services.dispute_open(user=sender.user, transaction_id=str(txn["_id"]), reason="WRONG_ACCOUNT")
    proposal = propose(people, 100_000, dispute=str(dispute["_id"]))
    approve = {"ops": [{"op": "approve", "staff": str(people["checker"].pk), "proposal": str(proposal["_id"])}]}
    spenders = [
        {
            "ops": [
                {"op": "transfer", "from": str(receiver.pk), "to": str(third.pk), "amount": 25_000, "key": f"s{w}-{n}"}
                for n in range(3)
            ]
        }
        for w in range(3)
    ]
    results = run_workers([approve, *spenders], subprocess_env)
    spent = [r for lines in results[1:] for r in lines if r["outcome"] == "ok"]
    refused = [r for lines in results[1:] for r in lines if r["outcome"] != "ok"]
    assert all(r.get("code") == "insufficient_funds" for r in refused), refused
    assert all(r["status"] == "COMPLETED" for r in spent)

    stored = collection(ReversalProposal).find_one({"_id": proposal["_id"]})
    reversal = collection(Transaction).find_one({"kind": TransactionKind.REVERSAL})
    assert results[0][0] == {
        "op": "approve",
        "key": "",
        "outcome": "ok",
        "state": stored["state"],
        "id": str(stored["_id"]),
    }
    receiver_balance, sender_balance = balances(receiver, sender)
    if stored["state"] == ProposalState.EXECUTED:
        assert reversal["status"] == "COMPLETED"
        assert not spent  # the whole ₹1,000 went back first: nothing was left to spend
        assert (sender_balance, receiver_balance) == (500_000, 0)
        assert collection(Dispute).find_one({"_id": dispute["_id"]})["state"] == "RESOLVED_REVERSED"
    else:
        assert stored["state"] == ProposalState.FAILED, stored
        assert "Insufficient funds" in stored["failure_reason"]
        assert (reversal["status"], reversal["failure_code"]) == ("FAILED", "insufficient_funds")
        assert spent  # something was spent first, or the full reversal would have gone through
        assert (sender_balance, receiver_balance) == (400_000, 100_000 - 25_000 * len(spent))
        assert collection(Dispute).find_one({"_id": dispute["_id"]})["state"] == "UNDER_REVIEW"  # stays open
    print(f"reversal {stored['state']}, {len(spent)} spends went through")
    entries = list(collection(LedgerEntry).find({"account_id": receiver.pk}).sort("seq", 1))
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(e["balance_after"] >= 0 for e in entries), entries
    assert entries[-1]["balance_after"] == receiver_balance
    assert_reversal_invariants()


def test_the_proposer_cannot_approve_or_retry_and_nothing_moves(people):
    sender, receiver, txn = people["sender"], people["receiver"], people["txn"]
    proposal = propose(people, 100_000)
    with pytest.raises(PermissionDenied):
        services.reversal_approve(staff=people["maker"], proposal_id=str(proposal["_id"]))
    with pytest.raises(PermissionDenied):
        services.reversal_retry(staff=people["maker"], proposal_id=str(proposal["_id"]))
    stored = collection(ReversalProposal).find_one({"_id": proposal["_id"]})
    assert (stored["state"], stored["decided_by"]) == (ProposalState.PENDING, "")
    assert collection(Transaction).count_documents({"kind": TransactionKind.REVERSAL}) == 0
    assert not AuditLog.objects.filter(action="REVERSAL_APPROVED").exists()
    assert balances(sender, receiver) == [400_000, 100_000]
    assert int(collection(Transaction).find_one({"_id": txn["_id"]}).get("reversed_amount") or 0) == 0
    assert_reversal_invariants()


def test_a_failed_reversal_retried_twice_at_once_after_funding_completes_once(people, fund, subprocess_env):
    sender, receiver, third, txn = people["sender"], people["receiver"], people["third"], people["txn"]
    dispute = services.dispute_open(user=sender.user, transaction_id=str(txn["_id"]), reason="FRAUD")
    send(receiver, third, 100_000, "spent-it")  # the receiver has nothing left
    proposal = propose(people, 100_000, dispute=str(dispute["_id"]))
    failed = services.reversal_approve(staff=people["checker"], proposal_id=str(proposal["_id"]))
    assert failed["state"] == ProposalState.FAILED and "Insufficient funds" in failed["failure_reason"]
    assert collection(Dispute).find_one({"_id": dispute["_id"]})["state"] == "UNDER_REVIEW"
    assert balances(sender, receiver) == [400_000, 0]

    fund(receiver, 100_000)
    specs = [
        {"ops": [{"op": "retry", "staff": str(people[s].pk), "proposal": str(proposal["_id"])}]}
        for s in ("checker", "checker2")
    ]
    results = [lines[0] for lines in run_workers(specs, subprocess_env)]
    outcomes = Counter((r["outcome"], r.get("state") or r.get("code")) for r in results)
    # The loser found it done (a replay settles to EXECUTED), decided, or still in flight.
    assert outcomes[("ok", "EXECUTED")] >= 1, results
    assert set(outcomes) <= {("ok", "EXECUTED"), ("error", "proposal_decided"), ("error", "transfer_in_flight")}

    reversals = list(collection(Transaction).find({"kind": TransactionKind.REVERSAL}))
    assert [(r["status"], r["retry_count"]) for r in reversals] == [("COMPLETED", 1)]
    assert AuditLog.objects.filter(action="REVERSAL_COMPLETED").count() == 1
    assert AuditLog.objects.filter(action="REVERSAL_FAILED").count() == 1
    assert balances(sender, receiver) == [500_000, 0]
    assert collection(Dispute).find_one({"_id": dispute["_id"]})["state"] == "RESOLVED_REVERSED"
    assert collection(ReversalProposal).find_one({"_id": proposal["_id"]})["state"] == ProposalState.EXECUTED
    assert_reversal_invariants()


def _wait_for_processing_reversal(proc, timeout: float = 30) -> dict:
    started = time.monotonic()
    while True:
        found = collection(Transaction).find_one({"kind": TransactionKind.REVERSAL, "status": "PROCESSING"})
        if found is not None:
            return found
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() - started < timeout, "the worker never claimed the reversal"
        time.sleep(0.05)


def test_a_worker_killed_mid_reversal_is_recovered_and_a_retry_completes_once(people, subprocess_env, fail_point):
    sender, receiver, txn = people["sender"], people["receiver"], people["txn"]
    proposal = propose(people, 100_000)
    # As tests/transfers/test_crash_recovery.py: hold the worker inside its money transaction.
    # Its findAndModify commands: the approval, then the debit (in the money transaction), then
    # the credit, held here for a minute; scoped to the worker's connections by appName.
    fail_point(
        {
            "failCommands": ["findAndModify"],
            "appName": "crash-reversal",
            "blockConnection": True,
            "blockTimeMS": 60_000,
        },
        times=1,
        skip=2,
    )
    env = dict(subprocess_env, MONGODB_URI=subprocess_env["MONGODB_URI"] + "&appName=crash-reversal")
    op = {"op": "approve", "staff": str(people["checker"].pk), "proposal": str(proposal["_id"])}
    proc = spawn({"ops": [op]}, env)
    try:
        _wait_for_processing_reversal(proc)
        time.sleep(1.5)  # the claim is in; its money transaction reaches the held credit within milliseconds
        assert proc.poll() is None, proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()

    reversal = collection(Transaction).find_one({"kind": TransactionKind.REVERSAL})
    assert reversal["status"] == "PROCESSING"
    assert collection(ReversalProposal).find_one({"_id": proposal["_id"]})["state"] == ProposalState.APPROVED
    assert sessions_of_dead_processes_end(get_client()) >= 1
    transfers_recover_stale(now=datetime.now(UTC) + timedelta(hours=1))
    reversal = collection(Transaction).find_one({"_id": reversal["_id"]})
    assert (reversal["status"], reversal["failure_code"], reversal["retry_count"]) == ("FAILED", "interrupted", 0)
    assert balances(sender, receiver) == [400_000, 100_000]  # the half-done reversal never committed
    assert collection(LedgerEntry).count_documents({"transaction_id": reversal["_id"]}) == 0
    assert int(collection(Transaction).find_one({"_id": txn["_id"]}).get("reversed_amount") or 0) == 0
    assert_reversal_invariants()

    # The proposal is still APPROVED (its worker died before it heard): a retry settles it, once.
    done = services.reversal_retry(staff=people["checker2"], proposal_id=str(proposal["_id"]))
    assert (done["state"], done["reversal_id"]) == (ProposalState.EXECUTED, str(reversal["_id"]))
    again = services.reversal_retry
    with pytest.raises(services.ProposalDecided):
        again(staff=people["checker"], proposal_id=str(proposal["_id"]))
    assert balances(sender, receiver) == [500_000, 0]
    assert collection(LedgerEntry).count_documents({"transaction_id": reversal["_id"]}) == 2
    assert_reversal_invariants()


def test_total_reversed_never_exceeds_the_original_whatever_the_concurrency(fund, subprocess_env):
    """Three originals; makers propose at once (some too large), then every proposal gets two
    racing approvers while the receiver spends, then every failure is retried twice at once."""
    rng = random.Random(20261202)
    sender, receiver, third = make_account(), make_account(), make_account()
    fund(sender, 500_000)
    originals = [send(sender, receiver, 50_000, f"pay-{n}") for n in range(3)]
    staff = [make_user(role=Role.ADMIN) for _ in range(4)]

    proposing = [
        {
            "ops": [
                {
                    "op": "propose",
                    "staff": str(staff[w % 2].pk),
                    "transaction": str(rng.choice(originals)["_id"]),
                    "amount": rng.choice([5_000, 15_000, 25_000, 40_000]),
                }
                for _ in range(4)
            ]
        }
        for w in range(4)
    ]
    results = [r for lines in run_workers(proposing, subprocess_env) for r in lines]
    assert {(r["outcome"], r.get("state") or r.get("code")) for r in results} <= {
        ("ok", "PENDING"),
        ("error", "reversal_too_large"),
    }, results
    assert any(r["outcome"] == "error" for r in results), "the amounts were meant to overbook some originals"
    assert_reversal_invariants()

    pending = list(collection(ReversalProposal).find({"state": ProposalState.PENDING}))
    approvals = []
    for proposal in pending:
        checkers = [s for s in staff if str(s.pk) != proposal["proposed_by"]]
        approvals += [
            {"op": "approve", "staff": str(s.pk), "proposal": str(proposal["_id"])} for s in rng.sample(checkers, 2)
        ]
    rng.shuffle(approvals)
    approving = [{"ops": approvals[w::3]} for w in range(3)]
    spending = {
        "ops": [
            {"op": "transfer", "from": str(receiver.pk), "to": str(third.pk), "amount": 20_000, "key": f"spend-{n}"}
            for n in range(5)
        ]
    }
    results = [r for lines in run_workers([*approving, spending], subprocess_env) for r in lines]
    assert not [r for r in results if r["outcome"] == "crash"], results
    assert_reversal_invariants()

    # Every proposal was decided exactly once: one APPROVED audit each.
    for proposal in pending:
        approved = {"action": "REVERSAL_APPROVED", "details.proposalId": str(proposal["_id"])}
        assert collection(AuditLog).count_documents(approved) == 1

    fund(receiver, 500_000)
    failed = list(collection(ReversalProposal).find({"state": ProposalState.FAILED}))
    retries = []
    for proposal in failed:
        checkers = [s for s in staff if str(s.pk) != proposal["proposed_by"]]
        retries += [
            {"op": "retry", "staff": str(s.pk), "proposal": str(proposal["_id"])} for s in rng.sample(checkers, 2)
        ]
    if retries:
        results = [
            r for lines in run_workers([{"ops": retries[0::2]}, {"ops": retries[1::2]}], subprocess_env) for r in lines
        ]
        assert {(r["outcome"], r.get("state") or r.get("code")) for r in results} <= {
            ("ok", "EXECUTED"),
            ("error", "proposal_decided"),
            ("error", "transfer_in_flight"),
        }, results
    states = Counter(p["state"] for p in collection(ReversalProposal).find({}))
    print(f"proposals: {dict(states)}, {len(failed)} retried")
    assert set(states) <= {ProposalState.EXECUTED, ProposalState.FAILED}, states
    for original in originals:
        stored = collection(Transaction).find_one({"_id": original["_id"]})
        executed = collection(ReversalProposal).find({"original_id": original["_id"], "state": ProposalState.EXECUTED})
        assert stored["reversed_amount"] <= stored["amount"]
        assert stored["reversed_amount"] == sum(p["amount"] for p in executed)
    assert_reversal_invariants()


def test_a_cancel_racing_a_retry_never_leaves_a_cancelled_proposal_whose_money_moved(
    people, fund, subprocess_env, fail_point
):
    """Staff member A retries a FAILED reversal while B cancels it. The retry has read the
    proposal (FAILED, retryable) and is about to claim the reversal's key when the cancel checks
    the reversal (still FAILED) and commits: the retry must not move money after that."""
    sender, receiver, third, txn = people["sender"], people["receiver"], people["third"], people["txn"]
    send(receiver, third, 100_000, "spent-it")
    proposal = propose(people, 100_000)
    assert services.reversal_approve(staff=people["checker"], proposal_id=str(proposal["_id"]))["state"] == "FAILED"
    fund(receiver, 100_000)  # the retry would now go through

    # The retrying worker's first findAndModify is its claim of the reversal's key: held 5 s.
    fail_point(
        {"failCommands": ["findAndModify"], "appName": "retry-racer", "blockConnection": True, "blockTimeMS": 5_000},
        times=1,
    )
    env = dict(subprocess_env, MONGODB_URI=subprocess_env["MONGODB_URI"] + "&appName=retry-racer")
    op = {"op": "retry", "staff": str(people["checker2"].pk), "proposal": str(proposal["_id"])}
    proc = spawn({"ops": [op], "barrier": True}, env, stdin=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(1.5)  # it has read the proposal and reached its held claim
        cancelled = services.reversal_cancel(
            staff=people["maker"], proposal_id=str(proposal["_id"]), note="refunded by cheque"
        )
        assert cancelled["state"] == ProposalState.CANCELLED
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    line = json.loads(out.splitlines()[-1])
    # It found the key closed (its proposal answered as CANCELLED) or the proposal decided.
    assert (line["outcome"], line.get("state") or line.get("code")) in {
        ("ok", "CANCELLED"),
        ("error", "proposal_decided"),
    }, line

    stored = collection(ReversalProposal).find_one({"_id": proposal["_id"]})
    assert stored["state"] == ProposalState.CANCELLED
    # Cancelled means no money moved: not now, and not by any later retry.
    assert collection(Transaction).count_documents({"kind": TransactionKind.REVERSAL, "status": "COMPLETED"}) == 0
    assert balances(sender, receiver) == [400_000, 100_000]
    assert int(collection(Transaction).find_one({"_id": txn["_id"]}).get("reversed_amount") or 0) == 0
    with pytest.raises(services.ProposalDecided):
        services.reversal_retry(staff=people["checker"], proposal_id=str(proposal["_id"]))
    assert balances(sender, receiver) == [400_000, 100_000]
    assert_reversal_invariants()
