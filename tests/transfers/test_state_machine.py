"""A Hypothesis state machine over transfers, replays, retries, freezes and funding.

It keeps its own model of every balance and every key, drives the real service against the
real server, and after every step checks the model and every `reconcile` invariant.
"""

from pathlib import Path
from tempfile import mkdtemp

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status, system_bootstrap
from aegis.errors import AegisError
from aegis.mongo import get_db
from ledger.reconcile import ledger_reconcile
from tests.factories import make_account
from transfers import exceptions as exc
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

    @rule(to=st.integers(0, ACCOUNTS - 1), amount=amounts)
    def fund(self, to, amount):
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

    @rule(frm=st.integers(0, ACCOUNTS - 1), to=st.integers(0, ACCOUNTS - 1), amount=amounts, key=st.sampled_from(KEYS))
    def transfer(self, frm, to, amount, key):
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

    @invariant()
    def balances_match_the_model_and_the_ledger(self):
        if not hasattr(self, "accounts"):
            return
        stored = {a.pk: a.balance for a in Account.objects.filter(pk__in=list(self.balance))}
        assert stored == self.balance
        report = ledger_reconcile()
        assert report.ok, report.summary()
        assert report.by_status.get("PROCESSING", 0) == 0


@pytest.mark.slow
def test_bank_state_machine():
    runner = Bank.TestCase
    runner.settings = settings(
        max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    runner("runTest").runTest()
