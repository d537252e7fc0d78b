"""Faults injected into the real server with its `failCommand` fail point (test commands on)."""

from aegis import mongo
from aegis.mongo import collection
from ledger.models import LedgerEntry
from ledger.reconcile import ledger_reconcile
from transfers import exceptions as exc
from transfers.models import Transaction
from transfers.services import transfer_create


def send_until_answered(sender, receiver, paise, key="fault-1", attempts=5):
    """A client that retries with the same key when told the outcome is not confirmed (503)."""
    answers = []
    for _ in range(attempts):
        try:
            result = transfer_create(
                actor=sender.user,
                from_account_id=str(sender.pk),
                to_account_id=str(receiver.pk),
                amount_paise=paise,
                idempotency_key=key,
            )
            answers.append("ok")
            return result, answers
        except exc.TransferBusy:
            answers.append("busy")
    raise AssertionError(f"never answered: {answers}")


def assert_moved_exactly_once(sender, receiver, paise, key="fault-1"):
    sender.refresh_from_db()
    receiver.refresh_from_db()
    assert (sender.balance, receiver.balance) == (500_000 - paise, paise)
    txn = collection(Transaction).find_one({"idempotency_key": key})
    assert txn["status"] == "COMPLETED"
    assert collection(LedgerEntry).count_documents({"transaction_id": txn["_id"]}) == 2
    report = ledger_reconcile()
    assert report.ok, report.summary()


def test_transient_errors_inside_the_transaction_are_retried_invisibly(funded_pair, fail_point):
    sender, receiver = funded_pair
    fail_point(
        {"failCommands": ["findAndModify"], "errorCode": 112, "errorLabels": ["TransientTransactionError"]}, times=2
    )
    before = mongo.conflict_retries
    result, answers = send_until_answered(sender, receiver, 12_345)
    assert answers == ["ok"]  # the client never saw the conflicts
    assert mongo.conflict_retries - before == 2
    assert (result.transaction["status"], result.transaction["retry_count"]) == ("COMPLETED", 0)
    assert_moved_exactly_once(sender, receiver, 12_345)


def test_transient_error_on_an_insert_then_client_retry(funded_pair, fail_point):
    sender, receiver = funded_pair
    # The first insert is the idempotency claim, outside any transaction: the client is told to
    # retry with the same key (503), nothing was written, and the retry completes it once.
    fail_point({"failCommands": ["insert"], "errorCode": 112, "errorLabels": ["TransientTransactionError"]})
    result, answers = send_until_answered(sender, receiver, 777)
    assert answers == ["busy", "ok"]
    assert result.transaction["status"] == "COMPLETED"
    assert_moved_exactly_once(sender, receiver, 777)


def test_network_error_on_commit_is_an_unknown_result_committed_once(funded_pair, fail_point):
    sender, receiver = funded_pair
    fail_point({"failCommands": ["commitTransaction"], "closeConnection": True})
    result, answers = send_until_answered(sender, receiver, 50_000)
    assert answers == ["ok"]
    assert result.transaction["status"] == "COMPLETED"
    assert_moved_exactly_once(sender, receiver, 50_000)


def test_error_reported_after_the_commit_applied_does_not_apply_it_twice(funded_pair, fail_point):
    sender, receiver = funded_pair
    fail_point(
        {
            "failCommands": ["commitTransaction"],
            "writeConcernError": {
                "code": 64,
                "codeName": "WriteConcernFailed",
                "errmsg": "injected",
                "errInfo": {"wtimeout": True},
            },
        }
    )
    result, answers = send_until_answered(sender, receiver, 42_000)
    assert result.transaction["status"] == "COMPLETED"
    assert_moved_exactly_once(sender, receiver, 42_000)
    # A client that lost the answer and replays the key gets the same transaction back.
    replay, _ = send_until_answered(sender, receiver, 42_000)
    assert replay.replayed and replay.transaction["_id"] == result.transaction["_id"]
    assert_moved_exactly_once(sender, receiver, 42_000)
