"""A worker SIGKILLed inside the money transaction: the sweeper ends its open transaction and
settles its claim; money moves at most once, and the accounts it held are free again at once."""

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from aegis.mongo import collection, get_client
from aegis.txn_sessions import sessions_of_dead_processes_end
from ledger.models import LedgerEntry
from ledger.reconcile import ledger_reconcile
from tests.transfers.procs import spawn
from transfers.exceptions import TransferBusy, TransferInFlight
from transfers.models import Transaction
from transfers.services import transfer_create, transfers_recover_stale

pytestmark = pytest.mark.slow


def _wait_for_processing(key: str, proc, timeout: float = 30) -> None:
    started = time.monotonic()
    while collection(Transaction).find_one({"idempotency_key": key, "status": "PROCESSING"}) is None:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() - started < timeout, "the worker never claimed the key"
        time.sleep(0.05)


def test_worker_killed_mid_transfer_is_recovered_without_moving_money(
    funded_pair, subprocess_env, fail_point, settings
):
    sender, receiver = funded_pair
    # Freeze the worker inside its money transaction, after the debit: the server holds its
    # second findAndModify (the credit) for a minute. Scoped to the worker's connections by
    # appName, so this test's own client is never held. No test hook lives in the money path.
    fail_point(
        {"failCommands": ["findAndModify"], "appName": "crash-worker", "blockConnection": True, "blockTimeMS": 60_000},
        times=1,
        skip=1,
    )
    env = dict(subprocess_env, MONGODB_URI=subprocess_env["MONGODB_URI"] + "&appName=crash-worker")
    op = {"op": "transfer", "from": str(sender.pk), "to": str(receiver.pk), "amount": 70_000, "key": "crash-1"}
    proc = spawn({"ops": [op]}, env)
    try:
        _wait_for_processing("crash-1", proc)
        time.sleep(1.5)  # the claim is in; its transaction reaches the held credit within milliseconds
        assert proc.poll() is None, proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)  # no abort, no endSessions: the transaction is left open
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()

    txn = collection(Transaction).find_one({"idempotency_key": "crash-1"})
    assert txn["status"] == "PROCESSING"
    # While the lease holds, a client retry is told the transfer is in flight (409), not run twice.
    with pytest.raises(TransferInFlight):
        transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(receiver.pk),
            amount_paise=70_000,
            idempotency_key="crash-1",
        )
    # The dead worker's open transaction still holds the sender's document (its gate): another
    # transfer from that account queues behind it and answers 503 at its deadline, never FAILED,
    # nothing moved, its claim released for the client's retry.
    settings.AEGIS_TRANSFER_DEADLINE_SECONDS = 1
    started = time.monotonic()
    with pytest.raises(TransferBusy):
        transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(receiver.pk),
            amount_paise=10_000,
            idempotency_key="behind-the-dead",
        )
    assert time.monotonic() - started < 6
    assert collection(Transaction).find_one({"idempotency_key": "behind-the-dead"})["status"] == "PROCESSING"
    settings.AEGIS_TRANSFER_DEADLINE_SECONDS = 10

    # The sweeper's first step: the dead process's sessions are ended, which aborts its
    # transaction on the server now instead of after the server's 60 s transaction lifetime.
    noted = list((settings.VAR_DIR / "txn-sessions").glob(f"*--{proc.pid}-*.lsids"))
    assert len(noted) == 1, "the worker did not note its transaction's session"
    assert sessions_of_dead_processes_end(get_client()) >= 1
    assert not noted[0].exists()
    # Then it settles the claim (as if the lease had run out already; the real sweeper waits it).
    transfers_recover_stale(now=datetime.now(UTC) + timedelta(hours=1))
    txn = collection(Transaction).find_one({"idempotency_key": "crash-1"})
    assert (txn["status"], txn["failure_code"]) == ("FAILED", "interrupted")
    sender.refresh_from_db()
    receiver.refresh_from_db()
    assert (sender.balance, receiver.balance) == (500_000, 0)  # the half-done debit never committed
    assert collection(LedgerEntry).count_documents({"transaction_id": txn["_id"]}) == 0
    report = ledger_reconcile()
    assert report.ok, report.summary()

    # The accounts are free at once: the client's retries with the same keys complete, exactly once.
    started = time.monotonic()
    result = transfer_create(
        actor=sender.user,
        from_account_id=str(sender.pk),
        to_account_id=str(receiver.pk),
        amount_paise=70_000,
        idempotency_key="crash-1",
    )
    behind = transfer_create(
        actor=sender.user,
        from_account_id=str(sender.pk),
        to_account_id=str(receiver.pk),
        amount_paise=10_000,
        idempotency_key="behind-the-dead",
    )
    assert time.monotonic() - started < 5
    assert result.transaction["status"] == "COMPLETED"
    assert behind.transaction["status"] == "COMPLETED" and not behind.replayed
    sender.refresh_from_db()
    receiver.refresh_from_db()
    assert (sender.balance, receiver.balance) == (420_000, 80_000)
    report = ledger_reconcile()
    assert report.ok, report.summary()
