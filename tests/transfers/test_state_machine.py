"""A Hypothesis state machine over transfers, replays, retries, freezes and funding, and over
disputes and reversals: opening a dispute, proposing (full, partial, too large), approving (by
the proposer: refused), rejecting, expiring, retrying and cancelling.

It keeps its own model of every balance, key, reservation and open dispute, drives the real
services against the real server, and after every step checks the model, every `reconcile`
invariant and the reversal invariants (reversed total <= original, reservations = live proposals).
"""

from collections import Counter
from datetime import timedelta
from pathlib import Path
from tempfile import mkdtemp

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from accounts.models import Account, AccountStatus, Role
from accounts.services import account_set_status, system_bootstrap
from aegis.errors import AegisError, PermissionDenied
from aegis.mongo import collection, get_db
from disputes import services as disputes
from disputes.models import OPEN_SLOT, Dispute, ProposalState, ReversalProposal
from tests.disputes.test_reversal_concurrency import assert_reversal_invariants
from tests.factories import make_account, make_user
from transfers import exceptions as exc
from transfers.models import Transaction
from transfers.services import system_fund, transfer_create

ACCOUNTS = 4
KEYS = ["k0", "k1", "k2", "k3", "k4"]  # a small pool, so keys are replayed, reused and retried
amounts = st.sampled_from([1, 99, 5_000, 20_000, 100_000, 1_000_000])


class Bank(RuleBasedStateMachine):
    @initialize()
    def open_bank(self):
        db = get_db()
        for name in db.list_collection_names():
            if not name.startswith(("system.", "django_")):
                db[name].delete_many({})
        self.bank = system_bootstrap(credentials_path=Path(mkdtemp()) / "credentials.json")
        self.accounts = [make_account() for _ in range(ACCOUNTS)]
        self.balance = {a.pk: 0 for a in self.accounts}
        self.frozen: set = set()
        self.keys: dict = {}  # (sender pk, key) -> {"to", "amount", "status", "retries"}
        self.fund_no = 0
        # Reversals: two staff members (so one can make and the other check), every COMPLETED
        # transfer or funding (id -> {"from", "to", "amount", "kind"}), what is reserved on each,
        # the open dispute of each, and every proposal (id -> {"original", "amount", "state",
        # "maker", "dispute", "failures"}).
        self.staff = [self.bank.admin_user, make_user(role=Role.ADMIN)]
        self.originals: dict = {}
        self.reserved: Counter = Counter()
        self.reversed: Counter = Counter()  # what COMPLETED reversals returned, per original
        self.open_dispute: dict = {}
        self.proposals: dict = {}
        self.engine_ran = True  # a money service ran since the last ledger walk
        # Something to dispute and reverse from the first step, through the rules themselves.
        self.fund(0, 100_000)
        self.transfer(0, 1, 20_000, "k0")

    @rule(to=st.integers(0, ACCOUNTS - 1), amount=amounts)
    def fund(self, to, amount):
        self.engine_ran = True
        account = self.accounts[to]
        self.fund_no += 1
        try:
            system_fund(
                actor=self.bank.system_user,
                to_account_id=str(account.pk),
                amount_paise=amount,
                idempotency_key=f"fund-{self.fund_no}",
            )
        except exc.TransferFailed as failed:
            assert account.pk in self.frozen and failed.code == "recipient_unavailable"
            return
        assert account.pk not in self.frozen
        self.balance[account.pk] += amount
        self.originals[self.last_id(f"fund-{self.fund_no}")] = {
            "from": None,
            "to": account.pk,
            "amount": amount,
            "kind": "SYSTEM_FUNDING",
        }

    @rule(frm=st.integers(0, ACCOUNTS - 1), to=st.integers(0, ACCOUNTS - 1), amount=amounts, key=st.sampled_from(KEYS))
    def transfer(self, frm, to, amount, key):
        self.engine_ran = True
        sender, receiver = self.accounts[frm], self.accounts[to]
        known = self.keys.get((sender.pk, key))
        try:
            result = transfer_create(
                actor=sender.user,
                from_account_id=str(sender.pk),
                to_account_id=str(receiver.pk),
                amount_paise=amount,
                idempotency_key=key,
            )
        except exc.SelfTransfer:
            assert frm == to
            return
        except exc.IdempotencyKeyReused:
            assert known is not None and (known["to"], known["amount"]) != (receiver.pk, amount)
            return
        except exc.RetriesExhausted:
            assert known is not None and known["status"] == "FAILED" and known["retries"] == 3
            return
        except exc.TransferFailed as failed:
            assert known is None or known["status"] == "FAILED"
            expected = {"insufficient_funds", "sender_not_active", "recipient_unavailable"}
            assert failed.code in expected
            if failed.code == "insufficient_funds":
                assert self.balance[sender.pk] < amount and sender.pk not in self.frozen
            self.keys[(sender.pk, key)] = {
                "to": receiver.pk,
                "amount": amount,
                "status": "FAILED",
                "retries": failed.transaction["retry_count"],
            }
            assert failed.transaction["retry_count"] == (known["retries"] + 1 if known else 1)
            return
        if result.replayed:
            assert known is not None and known["status"] == "COMPLETED"
            assert (known["to"], known["amount"]) == (receiver.pk, amount)
            return
        assert frm != to and (known is None or known["status"] == "FAILED")
        assert sender.pk not in self.frozen and receiver.pk not in self.frozen
        self.balance[sender.pk] -= amount
        self.balance[receiver.pk] += amount
        txn = result.transaction
        self.originals[txn["_id"]] = {"from": sender, "to": receiver.pk, "amount": amount, "kind": "TRANSFER"}
        self.keys[(sender.pk, key)] = {
            "to": receiver.pk,
            "amount": amount,
            "status": "COMPLETED",
            "retries": result.transaction["retry_count"],
        }

    @rule(index=st.integers(0, ACCOUNTS - 1))
    def freeze(self, index):
        account = self.accounts[index]
        try:
            account_set_status(account=account, actor=self.bank.admin_user, new_status=AccountStatus.FROZEN)
        except AegisError:
            assert account.pk in self.frozen
            return
        self.frozen.add(account.pk)

    @precondition(lambda self: self.frozen)
    @rule(index=st.integers(0, ACCOUNTS - 1))
    def unfreeze(self, index):
        account = self.accounts[index]
        try:
            account_set_status(account=account, actor=self.bank.admin_user, new_status=AccountStatus.ACTIVE)
        except AegisError:
            assert account.pk not in self.frozen
            return
        self.frozen.discard(account.pk)

    def last_id(self, key: str):
        return collection(Transaction).find_one({"idempotency_key": key}, {"_id": 1})["_id"]

    # --- disputes and reversals ------------------------------------------------------------

    def pick(self, index: int, states: tuple) -> tuple:
        ids = sorted(pid for pid, p in self.proposals.items() if p["state"] in states)
        pid = ids[index % len(ids)]
        return pid, self.proposals[pid]

    def has(self, *states) -> bool:
        return any(p["state"] in states for p in self.proposals.values())

    @precondition(lambda self: any(o["kind"] == "TRANSFER" for o in self.originals.values()))
    @rule(index=st.integers(0, 50), reason=st.sampled_from(["WRONG_ACCOUNT", "FRAUD", "OTHER"]))
    def open_dispute(self, index, reason):
        ids = sorted(t for t, o in self.originals.items() if o["kind"] == "TRANSFER")
        txn_id = ids[index % len(ids)]
        sender = self.originals[txn_id]["from"]
        if self.reversed[txn_id] >= self.originals[txn_id]["amount"]:
            with pytest.raises(disputes.DisputeNotAllowed):  # returned in full: nothing left to dispute
                disputes.dispute_open(user=sender.user, transaction_id=str(txn_id), reason=reason)
            return
        try:
            dispute = disputes.dispute_open(user=sender.user, transaction_id=str(txn_id), reason=reason)
        except disputes.DisputeExists:
            assert txn_id in self.open_dispute
            return
        assert txn_id not in self.open_dispute
        self.open_dispute[txn_id] = dispute["_id"]

    @precondition(lambda self: self.originals)
    @rule(
        index=st.integers(0, 50),
        full=st.booleans(),
        amount=st.sampled_from([1, 5_000, 20_000, 100_000, 1_000_000]),
        maker=st.integers(0, 1),
        with_dispute=st.booleans(),
    )
    def propose(self, index, full, amount, maker, with_dispute):
        ids = sorted(self.originals)
        txn_id = ids[index % len(ids)]
        original = self.originals[txn_id]
        left = original["amount"] - self.reserved[txn_id]
        amount = max(left, 1) if full else amount
        dispute = self.open_dispute.get(txn_id) if with_dispute else None
        try:
            proposal = disputes.reversal_propose(
                staff=self.staff[maker], transaction_id=str(txn_id), amount_paise=amount, dispute_id=dispute
            )
        except disputes.ReversalTooLarge:
            assert amount > left
            return
        assert amount <= left
        self.reserved[txn_id] += amount
        self.proposals[proposal["_id"]] = {
            "original": txn_id,
            "amount": amount,
            "state": ProposalState.PENDING,
            "maker": maker,
            "dispute": dispute,
            "failures": 0,
        }

    def expect_run(self, pid, proposal, outcome: dict) -> None:
        """The model's side of running a proposal's reversal: the original's receiver pays its
        sender back if it can; otherwise FAILED (three failures use up the key's attempts)."""
        self.engine_ran = True
        original = self.originals[proposal["original"]]
        payer = original["to"]
        if proposal["failures"] >= 3:
            assert outcome["state"] == ProposalState.FAILED
            return
        if self.balance[payer] < proposal["amount"]:
            assert outcome["state"] == ProposalState.FAILED, outcome
            assert "Insufficient funds" in outcome["failure_reason"]
            proposal["state"] = ProposalState.FAILED
            proposal["failures"] += 1
            return
        assert outcome["state"] == ProposalState.EXECUTED, outcome
        proposal["state"] = ProposalState.EXECUTED
        self.balance[payer] -= proposal["amount"]
        if original["from"] is not None:
            self.balance[original["from"].pk] += proposal["amount"]
        txn_id = proposal["original"]
        self.reversed[txn_id] += proposal["amount"]
        if proposal["dispute"] is not None and self.open_dispute.get(txn_id) == proposal["dispute"]:
            del self.open_dispute[txn_id]  # resolved by this reversal

    def approve(self, pid, proposal, by_maker: bool) -> None:
        checker = self.staff[proposal["maker"] if by_maker else 1 - proposal["maker"]]
        if by_maker:
            with pytest.raises(PermissionDenied):
                disputes.reversal_approve(staff=checker, proposal_id=str(pid))
            return
        self.expect_run(pid, proposal, disputes.reversal_approve(staff=checker, proposal_id=str(pid)))

    def retry(self, pid, proposal, by: int) -> None:
        checker = self.staff[1 - proposal["maker"]]
        if proposal["state"] not in (ProposalState.FAILED, ProposalState.APPROVED):
            with pytest.raises(disputes.ProposalDecided):
                disputes.reversal_retry(staff=checker, proposal_id=str(pid))
            return
        self.expect_run(pid, proposal, disputes.reversal_retry(staff=checker, proposal_id=str(pid)))

    # Which proposals each decision is tried on (the others answer ProposalDecided or similar).
    DECISIONS = {
        "approve": (ProposalState.PENDING,),
        "approve_as_maker": (ProposalState.PENDING,),
        "reject": tuple(ProposalState),
        "expire": (ProposalState.PENDING,),
        "retry": tuple(ProposalState),
        "cancel": (ProposalState.FAILED,),
    }

    # One rule for every decision on a proposal, so that swarm testing (which turns rules off per
    # example) does not leave the reversals rarely exercised next to the transfer rules.
    @precondition(lambda self: self.proposals)
    @rule(decision=st.sampled_from(sorted(DECISIONS)), index=st.integers(0, 50), by=st.integers(0, 1))
    def decide(self, decision, index, by):
        if not self.has(*self.DECISIONS[decision]):
            decision = "reject"  # every proposal can be asked: a decided one says so
        pid, proposal = self.pick(index, self.DECISIONS[decision])
        if decision.startswith("approve"):
            self.approve(pid, proposal, by_maker=decision == "approve_as_maker")
        else:
            getattr(self, decision)(pid, proposal, by)

    def end(self, pid, proposal, state) -> None:
        proposal["state"] = state
        self.reserved[proposal["original"]] -= proposal["amount"]

    def reject(self, pid, proposal, by: int) -> None:
        if proposal["state"] != ProposalState.PENDING:
            with pytest.raises(disputes.ProposalDecided):
                disputes.reversal_reject(staff=self.staff[by], proposal_id=str(pid))
            return
        rejected = disputes.reversal_reject(staff=self.staff[by], proposal_id=str(pid), note="no")
        assert rejected["state"] == ProposalState.REJECTED
        self.end(pid, proposal, ProposalState.REJECTED)

    def expire(self, pid, proposal, by: int) -> None:
        stored = collection(ReversalProposal).find_one({"_id": pid}, {"expires_at": 1})
        collection(ReversalProposal).update_one(
            {"_id": pid}, {"$set": {"expires_at": stored["expires_at"] - timedelta(hours=25)}}
        )
        checker = self.staff[1 - proposal["maker"]]
        with pytest.raises(disputes.ProposalExpired):  # approving it finds it expired, and expires it
            disputes.reversal_approve(staff=checker, proposal_id=str(pid))
        assert disputes.proposals_expire() == 0
        self.end(pid, proposal, ProposalState.EXPIRED)

    def cancel(self, pid, proposal, by: int) -> None:
        cancelled = disputes.reversal_cancel(staff=self.staff[by], proposal_id=str(pid), note="paid back otherwise")
        assert cancelled["state"] == ProposalState.CANCELLED
        self.end(pid, proposal, ProposalState.CANCELLED)

    @invariant()
    def balances_match_the_model_and_the_ledger(self):
        if not hasattr(self, "accounts"):
            return
        stored = {a.pk: a.balance for a in Account.objects.filter(pk__in=list(self.balance))}
        assert stored == self.balance
        assert all(b >= 0 for b in stored.values()), stored
        # The reversal invariants from the database, and `reconcile` (money conserved, every
        # posting) after every step that ran the money engine; the others wrote no money.
        assert_reversal_invariants(reconcile=self.engine_ran)
        self.engine_ran = False

    @invariant()
    def proposals_and_disputes_match_the_model(self):
        if not hasattr(self, "accounts"):
            return
        states = {p["_id"]: p["state"] for p in collection(ReversalProposal).find({}, {"state": 1})}
        assert states == {pid: p["state"] for pid, p in self.proposals.items()}
        for txn_id, reserved in self.reserved.items():
            assert reserved <= self.originals[txn_id]["amount"]
        open_ = Counter(d["transaction_id"] for d in collection(Dispute).find({"slot": OPEN_SLOT}))
        assert all(n == 1 for n in open_.values()), open_  # at most one open dispute per transaction
        assert set(open_) == set(self.open_dispute)


@pytest.mark.slow
def test_bank_state_machine():
    runner = Bank.TestCase
    runner.settings = settings(
        max_examples=20, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    runner("runTest").runTest()


class Reversals(Bank):
    """The same bank without freezing (cheap steps that Hypothesis's simplest examples favour),
    so that each example spends its steps on disputes, proposals, decisions and the money."""

    freeze = None
    unfreeze = None


@pytest.mark.slow
def test_reversal_state_machine():
    runner = Reversals.TestCase
    runner.settings = settings(
        max_examples=15, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    runner("runTest").runTest()
