"""Edges of the transfer engine, each on the real server (issue 13, item 11).

- a claim lost while a refusal was being recorded answers by the record's state, never 422
  around a COMPLETED transfer;
- a record that vanished between two reads answers 503 "retry", never a TypeError;
- every answer about a key is read with majority read concern;
- one hung command cannot outlive the transfer's deadline;
- a database error that is not a conflict frees the claim, so the same-key retry runs at once.
"""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from django.db import connections
from pymongo import monitoring

from aegis.mongo import collection
from ledger.reconcile import ledger_reconcile
from transfers import exceptions as exc
from transfers import services
from transfers.models import Transaction
from transfers.services import transfer_create, transfers_recover_stale


def _send(sender, receiver, *, key, amount=10_000):
    return transfer_create(
        actor=sender.user,
        from_account_id=str(sender.pk),
        to_account_id=str(receiver.pk),
        amount_paise=amount,
        idempotency_key=key,
    )


def test_a_claim_lost_while_recording_a_refusal_answers_by_the_current_record(funded_pair, fund, fail_point):
    sender, receiver = funded_pair  # ₹5,000
    # The refused attempt's money transaction runs its debit (findAndModify #1, skipped); the
    # server then holds the FAILED update (findAndModify #2) for 3 s. Meanwhile recovery settles
    # the claim and the same key is retried to completion by "another worker".
    fail_point({"failCommands": ["findAndModify"], "blockConnection": True, "blockTimeMS": 3000}, times=1, skip=1)
    outcome = {}

    def first_attempt():
        try:
            outcome["result"] = _send(sender, receiver, key="lost", amount=600_000)
        except Exception as error:  # noqa: BLE001 - the test inspects whatever it was
            outcome["error"] = error
        finally:
            connections.close_all()

    worker = threading.Thread(target=first_attempt)
    worker.start()
    time.sleep(1.0)  # the refusal is being recorded: its update is held by the server
    assert transfers_recover_stale(now=datetime.now(UTC) + timedelta(hours=1))["recovered"] == 1
    fund(sender, 200_000)
    retried = _send(sender, receiver, key="lost", amount=600_000)
    assert retried.transaction["status"] == "COMPLETED"
    worker.join(timeout=30)

    assert "error" not in outcome, outcome.get("error")  # before the fix: TransferFailed around COMPLETED
    assert outcome["result"].transaction["status"] == "COMPLETED" and outcome["result"].replayed
    record = collection(Transaction).find_one({"idempotency_key": "lost"})
    assert (record["status"], record["retry_count"]) == ("COMPLETED", 0)
    assert ledger_reconcile().ok


def test_a_record_that_vanished_answers_retry_not_a_crash(funded_pair):
    with pytest.raises(exc.TransferBusy):
        services._answer_for(ObjectId())
    ghost = {"_id": ObjectId(), "status": "FAILED", "retry_count": 0, "attempt_id": "a"}
    with pytest.raises(exc.TransferBusy):
        services._reclaim(ghost)


class _Commands(monitoring.CommandListener):
    def __init__(self):
        self.recording = False
        self.log = []

    def started(self, event):
        if self.recording:
            self.log.append((event.command_name, dict(event.command)))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture
def commands():
    """Every command this process sends while `recording` (a client made after registering)."""
    listener = _Commands()
    monitoring.register(listener)  # applies to clients created from now on
    connections["default"].close_pool()  # the next query makes a new client, with the listener
    yield listener
    listener.recording = False


def test_answers_about_a_key_are_read_with_majority_read_concern(funded_pair, commands):
    sender, receiver = funded_pair
    _send(sender, receiver, key="replay-me")
    commands.recording = True
    replay = _send(sender, receiver, key="replay-me")
    commands.recording = False
    assert replay.replayed
    lookups = [cmd for name, cmd in commands.log if name == "find" and cmd.get("find") == Transaction._meta.db_table]
    assert lookups, commands.log
    assert all(cmd.get("readConcern") == {"level": "majority"} for cmd in lookups), lookups


def test_one_hung_command_does_not_outlive_the_deadline_and_the_retry_runs_at_once(funded_pair, fail_point, settings):
    sender, receiver = funded_pair
    settings.AEGIS_TRANSFER_DEADLINE_SECONDS = 1
    # The first update of the money transaction (settling the claim) hangs for 8 s.
    fail_point({"failCommands": ["update"], "blockConnection": True, "blockTimeMS": 8000})
    started = time.monotonic()
    with pytest.raises(exc.TransferBusy):
        _send(sender, receiver, key="hung")
    assert time.monotonic() - started < 5  # bounded by the deadline (1 s), not by the hung command (8 s)

    settings.AEGIS_TRANSFER_DEADLINE_SECONDS = 10
    retried = _send(sender, receiver, key="hung")  # not 409: the claim was released
    assert retried.transaction["status"] == "COMPLETED"
    sender.refresh_from_db()
    assert sender.balance == 490_000  # moved once
    assert ledger_reconcile().ok


def test_a_database_error_that_is_not_a_conflict_frees_the_claim(funded_pair, fail_point):
    sender, receiver = funded_pair
    fail_point({"failCommands": ["update"], "errorCode": 2, "errorLabels": []})  # BadValue, not transient
    with pytest.raises(exc.TransferBusy):
        _send(sender, receiver, key="broken")
    record = collection(Transaction).find_one({"idempotency_key": "broken"})
    lease = record["lease_expires_at"]
    lease = lease if lease.tzinfo else lease.replace(tzinfo=UTC)
    assert record["status"] == "PROCESSING" and lease <= datetime.now(UTC)  # released, not held for 30 s

    retried = _send(sender, receiver, key="broken")  # before the fix: 409 in flight for the 30 s lease
    assert retried.transaction["status"] == "COMPLETED" and not retried.replayed
    assert ledger_reconcile().ok
