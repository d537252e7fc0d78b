"""`manage.py reconcile` finds each kind of violation and exits non-zero; a clean bank exits 0."""

import subprocess
import sys
from pathlib import Path

import pytest
from bson import Int64

from accounts.models import Account
from aegis.mongo import collection
from ledger.models import LedgerEntry
from ledger.reconcile import ledger_reconcile
from tests.factories import make_account
from transfers.models import Transaction
from transfers.services import transfer_create

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_bank(fund):
    a, b = fund(make_account(), 100_000), make_account()
    for i in range(3):
        transfer_create(
            actor=a.user,
            from_account_id=str(a.pk),
            to_account_id=str(b.pk),
            amount_paise=1_000,
            idempotency_key=f"r{i}",
        )
    return a, b


def reconcile_cli(env):
    return subprocess.run(
        [sys.executable, "manage.py", "reconcile"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_clean_bank_reconciles(busy_bank, subprocess_env):
    result = reconcile_cli(subprocess_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every invariant holds" in result.stdout
    assert "COMPLETED 4" in result.stdout  # 1 funding + 3 transfers


def test_a_balance_changed_behind_the_ledger_is_reported(busy_bank, subprocess_env):
    a, _ = busy_bank
    collection(Account).update_one({"_id": a.pk}, {"$inc": {"balance": Int64(1)}})
    report = ledger_reconcile()
    assert any("money not conserved" in v for v in report.violations)
    assert any(f"account {a.pk}: balance" in v for v in report.violations)
    result = reconcile_cli(subprocess_env)
    assert result.returncode == 1
    assert "VIOLATION" in result.stdout


def test_negative_customer_balance_is_reported(busy_bank):
    a, _ = busy_bank
    collection(Account).update_one({"_id": a.pk}, {"$set": {"balance": Int64(-5)}})
    assert any("is negative" in v for v in ledger_reconcile().violations)


def test_completed_transfer_missing_an_entry_is_reported(busy_bank):
    txn = collection(Transaction).find_one({"idempotency_key": "r1"})
    collection(LedgerEntry).delete_one({"transaction_id": txn["_id"], "type": "CREDIT"})
    violations = ledger_reconcile().violations
    assert any(f"COMPLETED transaction {txn['_id']}" in v for v in violations)
    assert any("ledger seq jumps" in v or "ledger_seq" in v for v in violations)


def test_entries_on_a_failed_transfer_are_reported(busy_bank):
    txn = collection(Transaction).find_one({"idempotency_key": "r2"})
    collection(Transaction).update_one({"_id": txn["_id"]}, {"$set": {"status": "FAILED"}})
    assert any(f"FAILED transaction {txn['_id']} has 2 ledger entries" in v for v in ledger_reconcile().violations)


def test_broken_balance_after_chain_is_reported(busy_bank):
    a, _ = busy_bank
    entry = collection(LedgerEntry).find_one({"account_id": a.pk, "type": "DEBIT"})
    collection(LedgerEntry).update_one({"_id": entry["_id"]}, {"$inc": {"balance_after": Int64(7)}})
    assert any("balance_after" in v for v in ledger_reconcile().violations)
