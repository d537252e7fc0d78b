"""A worker SIGKILLed inside the money transaction: recovery settles it; money moves at most once."""

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from aegis.mongo import collection
from ledger.models import LedgerEntry
from ledger.reconcile import ledger_reconcile
from tests.transfers.procs import spawn
from transfers.exceptions import TransferInFlight
from transfers.models import Transaction
from transfers.services import transfer_create, transfers_recover_stale

pytestmark = pytest.mark.slow

# The server aborts a dead client's open transaction after its 60 s transaction lifetime;
# until then that transaction still holds the records it wrote, so recovery waits for it.
RECOVERY_WINDOW_SECONDS = 120


def test_worker_killed_mid_transfer_is_recovered_without_moving_money(funded_pair, subprocess_env):
    sender, receiver = funded_pair
    op = {"op": "transfer", "from": str(sender.pk), "to": str(receiver.pk), "amount": 70_000, "key": "crash-1"}
    proc = spawn({"ops": [op]}, dict(subprocess_env, AEGIS_TEST_PAUSE_AT="after_debit"))
    try:
        line = proc.stdout.readline()
        assert line.strip() == "PAUSED after_debit", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)  # no abort, no endSessions: the transaction is left open
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()

    txn = collection(Transaction).find_one({"idempotency_key": "crash-1"})
    assert txn["status"] == "PROCESSING"
    # While the lease holds, a client retry is told the transfer is in flight (409), not run twice.
    with pytest.raises(TransferInFlight):
        transfer_create(actor=sender.user, from_account_id=str(sender.pk), to_account_id=str(receiver.pk),
                        amount_paise=70_000, idempotency_key="crash-1")

    started = time.monotonic()
    while True:
        # Sweep as if the lease had run out already (the real sweeper waits the lease itself).
        counts = transfers_recover_stale(now=datetime.now(UTC) + timedelta(hours=1))
        if counts["recovered"]:
            break
        assert time.monotonic() - started < RECOVERY_WINDOW_SECONDS, "the stuck transfer was never settled"
        time.sleep(1)

    txn = collection(Transaction).find_one({"idempotency_key": "crash-1"})
    assert (txn["status"], txn["failure_code"]) == ("FAILED", "interrupted")
    sender.refresh_from_db()
    receiver.refresh_from_db()
    assert (sender.balance, receiver.balance) == (500_000, 0)  # the half-done debit never committed
    assert collection(LedgerEntry).count_documents({"transaction_id": txn["_id"]}) == 0
    report = ledger_reconcile()
    assert report.ok, report.summary()

    # The client's retry with the same key now completes it, exactly once.
    result = transfer_create(actor=sender.user, from_account_id=str(sender.pk), to_account_id=str(receiver.pk),
                             amount_paise=70_000, idempotency_key="crash-1")
    assert result.transaction["status"] == "COMPLETED"
    sender.refresh_from_db()
    receiver.refresh_from_db()
    assert (sender.balance, receiver.balance) == (430_000, 70_000)
    report = ledger_reconcile()
    assert report.ok, report.summary()
