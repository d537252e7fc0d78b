"""The per-account gate: a transfer meeting an account another transaction holds queues behind it.

Each test holds an account document in an open transaction of its own (what a concurrent
transfer's money transaction does between its first write and its commit), then runs a real
transfer against the real server and watches what it does while held and after the holder ends.
"""

import threading
import time
from datetime import UTC, datetime

import pytest
from django.test import Client
from pymongo import MongoClient

from accounts.models import Account
from aegis import mongo
from aegis.mongo import TXN_OPTIONS, collection
from ledger.reconcile import ledger_reconcile
from transfers import exceptions as exc
from transfers.models import Transaction
from transfers.services import transfer_create

HOLD_SECONDS = 0.6


@pytest.fixture
def holder(django_db_modify_db_settings):
    """Opens a transaction on its own client that writes one account document and keeps it open."""
    from django.conf import settings

    client = MongoClient(settings.DATABASES["default"]["HOST"])
    db = client[mongo.get_db().name]
    sessions = []

    def hold(account):
        session = client.start_session()
        session.start_transaction(**TXN_OPTIONS)
        db[Account._meta.db_table].update_one(
            {"_id": account.pk}, {"$set": {"updated_at": datetime.now(UTC)}}, session=session
        )
        sessions.append(session)
        return session

    yield hold
    for session in sessions:
        if session.in_transaction:
            session.abort_transaction()
        session.end_session()
    client.close()


def _send(sender, receiver, key, amount=10_000):
    return transfer_create(
        actor=sender.user,
        from_account_id=str(sender.pk),
        to_account_id=str(receiver.pk),
        amount_paise=amount,
        idempotency_key=key,
    )


@pytest.mark.parametrize("held", ["sender", "receiver"])
def test_a_transfer_waits_for_the_holder_of_its_account_then_completes_once(funded_pair, holder, held, bank):
    sender, receiver = funded_pair
    account = sender if held == "sender" else receiver
    session = holder(account)
    waits_before, retries_before = mongo.queue_waits, mongo.conflict_retries
    committed_at = []

    def let_go():
        session.commit_transaction()
        committed_at.append(time.monotonic())

    threading.Timer(HOLD_SECONDS, let_go).start()
    started = time.monotonic()
    result = _send(sender, receiver, key=f"queued-{held}")
    finished = time.monotonic()

    assert result.transaction["status"] == "COMPLETED" and not result.replayed
    # It did not finish while the account was held, and it did not sit out a backoff afterwards.
    assert committed_at and finished >= committed_at[0]
    assert finished - started >= HOLD_SECONDS
    assert finished - committed_at[0] < 1.0
    # It queued (once: nobody else wanted the account) instead of backing off and guessing.
    assert mongo.queue_waits - waits_before == 1
    assert mongo.conflict_retries - retries_before == 1
    doc = collection(Account).find_one({"_id": account.pk})
    assert doc["contention_waits"] == 1
    sender.refresh_from_db()
    receiver.refresh_from_db()
    assert (sender.balance, receiver.balance) == (490_000, 10_000)
    assert ledger_reconcile().ok
    staff = Client()
    staff.force_login(bank.admin_user)
    metrics = staff.get("/metrics").content.decode()
    assert f"aegis_transaction_queue_waits_total {float(mongo.queue_waits)}" in metrics


def test_with_the_gate_off_a_conflict_is_backed_off_and_retried_instead(funded_pair, holder, settings):
    settings.AEGIS_TRANSFER_GATE = False
    sender, receiver = funded_pair
    session = holder(receiver)
    waits_before, retries_before = mongo.queue_waits, mongo.conflict_retries
    threading.Timer(HOLD_SECONDS, session.commit_transaction).start()

    result = _send(sender, receiver, key="optimistic")

    assert result.transaction["status"] == "COMPLETED"
    assert mongo.queue_waits == waits_before  # never queued
    assert mongo.conflict_retries - retries_before >= 2  # reran the whole transaction, repeatedly
    assert "contention_waits" not in collection(Account).find_one({"_id": receiver.pk})
    assert ledger_reconcile().ok


def test_a_holder_that_never_lets_go_costs_the_deadline_then_503_and_nothing_moved(funded_pair, holder, settings):
    settings.AEGIS_TRANSFER_DEADLINE_SECONDS = 1.5
    sender, receiver = funded_pair
    session = holder(sender)  # a holder that hangs (or died with its transaction open)

    started = time.monotonic()
    with pytest.raises(exc.TransferBusy):
        _send(sender, receiver, key="stuck-behind")
    assert time.monotonic() - started < 1.5 + mongo.COMMAND_GRACE_SECONDS + 1.5

    record = collection(Transaction).find_one({"idempotency_key": "stuck-behind"})
    lease = record["lease_expires_at"]
    lease = lease if lease.tzinfo else lease.replace(tzinfo=UTC)
    # Not FAILED (it was nobody's refusal) and the claim is released so a retry runs at once.
    assert record["status"] == "PROCESSING" and lease <= datetime.now(UTC)
    sender.refresh_from_db()
    assert sender.balance == 500_000

    session.abort_transaction()
    settings.AEGIS_TRANSFER_DEADLINE_SECONDS = 10
    retried = _send(sender, receiver, key="stuck-behind")
    assert retried.transaction["status"] == "COMPLETED" and not retried.replayed
    sender.refresh_from_db()
    assert sender.balance == 490_000  # moved once
    assert ledger_reconcile().ok


# --- the first level: this host's workers queue in the kernel, not in the database ------------


def _stripe_file(account):
    from transfers.gate import _lock_path, _stripe

    path = _lock_path(_stripe(account.pk))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_a_worker_of_this_host_waits_its_turn_without_touching_the_database(funded_pair):
    from transfers.gate import host_gate

    sender, receiver = funded_pair
    waits_before, retries_before = mongo.queue_waits, mongo.conflict_retries
    turn = host_gate([receiver.pk], deadline=time.monotonic() + 10)
    turn.__enter__()  # another worker of this host is moving money on the receiver
    threading.Timer(HOLD_SECONDS, turn.__exit__, args=(None, None, None)).start()

    started = time.monotonic()
    result = _send(sender, receiver, key="took-its-turn")

    assert result.transaction["status"] == "COMPLETED"
    assert time.monotonic() - started >= HOLD_SECONDS
    # It never opened a transaction that could conflict: nothing was thrown away, nothing queued.
    assert (mongo.queue_waits, mongo.conflict_retries) == (waits_before, retries_before)
    assert ledger_reconcile().ok


def test_the_kernel_frees_an_account_whose_holder_process_died(funded_pair, settings):
    import subprocess
    import sys

    sender, receiver = funded_pair
    holder_code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(_stripe_file(sender))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        settings.AEGIS_TRANSFER_DEADLINE_SECONDS = 1
        with pytest.raises(exc.TransferBusy):  # held: 503 at the deadline, nothing moved
            _send(sender, receiver, key="after-the-holder")
        sender.refresh_from_db()
        assert sender.balance == 500_000
    finally:
        proc.kill()  # SIGKILL: the holder never unlocks; the kernel does
        proc.wait(timeout=10)

    started = time.monotonic()
    retried = _send(sender, receiver, key="after-the-holder")  # same key: the claim was released
    assert retried.transaction["status"] == "COMPLETED" and not retried.replayed
    assert time.monotonic() - started < 1
    sender.refresh_from_db()
    assert sender.balance == 490_000
    assert ledger_reconcile().ok


def test_without_its_lock_files_the_gate_steps_aside_and_the_transfer_still_runs(
    funded_pair, settings, tmp_path, caplog
):
    settings.VAR_DIR = tmp_path
    (tmp_path / "gates").write_text("not a folder")  # every lock file open fails
    sender, receiver = funded_pair
    result = _send(sender, receiver, key="no-lock-files")
    assert result.transaction["status"] == "COMPLETED"
    assert "going on without it" in caplog.text
    sender.refresh_from_db()
    assert sender.balance == 490_000
    assert ledger_reconcile().ok
