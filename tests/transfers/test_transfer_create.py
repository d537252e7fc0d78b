"""The transfer service, one request at a time, against the real embedded server."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import AccountStatus
from accounts.services import account_set_status
from aegis.errors import NotFound, PermissionDenied, ValidationFailed
from aegis.mongo import collection
from events.models import OutboxEvent
from ledger.models import AuditLog, LedgerEntry
from ledger.reconcile import ledger_reconcile
from tests.factories import make_account
from transfers import exceptions as exc
from transfers.models import Transaction
from transfers.services import system_fund, transfer_create, transfers_recover_stale


def send(sender, receiver, paise, key="k1", **kw):
    return transfer_create(
        actor=sender.user,
        from_account_id=str(sender.pk),
        to_account_id=str(receiver.pk),
        amount_paise=paise,
        idempotency_key=key,
        **kw,
    )


def balances(*accounts):
    for account in accounts:
        account.refresh_from_db()
    return [a.balance for a in accounts]


def assert_reconciled():
    report = ledger_reconcile()
    assert report.ok, report.summary()


def test_completed_transfer_moves_money_and_writes_everything_once(funded_pair):
    sender, receiver = funded_pair
    result = send(sender, receiver, 150_050, note="rent")
    txn = result.transaction
    assert (txn["status"], txn["retry_count"], result.replayed) == ("COMPLETED", 0, False)
    assert balances(sender, receiver) == [500_000 - 150_050, 150_050]
    entries = list(LedgerEntry.objects.filter(transaction_id=txn["_id"]).order_by("type"))
    assert [(e.type, e.amount, e.balance_after) for e in entries] == [
        ("CREDIT", 150_050, 150_050),
        ("DEBIT", 150_050, 349_950),
    ]
    assert AuditLog.objects.filter(transaction_id=str(txn["_id"]), action="TRANSFER_SUCCESS").count() == 1
    events = list(collection(OutboxEvent).find({"payload.transactionId": str(txn["_id"])}))
    assert [e["event_type"] for e in events] == ["transaction.completed"]
    assert_reconciled()


def test_replay_of_completed_key_returns_the_original_and_moves_nothing(funded_pair):
    sender, receiver = funded_pair
    first = send(sender, receiver, 10_000)
    again = send(sender, receiver, 10_000)
    assert again.replayed and again.transaction["_id"] == first.transaction["_id"]
    assert balances(sender, receiver) == [490_000, 10_000]
    assert collection(LedgerEntry).count_documents({"transaction_id": first.transaction["_id"]}) == 2
    assert_reconciled()


@pytest.mark.parametrize("change", ["amount", "recipient"])
def test_same_key_different_payload_is_rejected(funded_pair, change):
    sender, receiver = funded_pair
    send(sender, receiver, 10_000)
    other = make_account() if change == "recipient" else receiver
    with pytest.raises(exc.IdempotencyKeyReused) as raised:
        send(sender, other, 20_000 if change == "amount" else 10_000)
    assert raised.value.status == 422
    assert balances(sender, receiver) == [490_000, 10_000]


def test_same_key_from_another_sender_is_a_different_transfer(funded_pair, fund):
    sender, receiver = funded_pair
    other = fund(make_account(), 50_000)
    send(sender, receiver, 1_000, key="shared")
    send(other, receiver, 1_000, key="shared")
    assert balances(receiver) == [2_000]


@pytest.mark.parametrize("sender_id", ["foreign", "malformed", "missing"])
def test_sender_must_belong_to_the_caller_before_anything_else(funded_pair, sender_id):
    victim, receiver = funded_pair
    attacker = make_account()
    account_id = {"foreign": str(victim.pk), "malformed": "not-an-id", "missing": "0123456789abcdef01234567"}[sender_id]
    with pytest.raises(NotFound):
        transfer_create(
            actor=attacker.user,
            from_account_id=account_id,
            to_account_id=str(receiver.pk),
            amount_paise=100,
            idempotency_key="k1",
        )
    # Nothing was written against the victim's account, not even a FAILED record.
    assert collection(Transaction).count_documents({"from_account_id": victim.pk, "idempotency_key": "k1"}) == 0
    assert balances(victim) == [500_000]


def test_insufficient_funds_is_recorded_failed_then_retry_succeeds(funded_pair, fund):
    sender, receiver = funded_pair
    with pytest.raises(exc.TransferFailed) as raised:
        send(sender, receiver, 600_000)
    failed = raised.value.transaction
    assert (failed["status"], failed["retry_count"], raised.value.code) == ("FAILED", 1, "insufficient_funds")
    assert "Insufficient funds" in failed["failure_reason"]
    assert AuditLog.objects.filter(transaction_id=str(failed["_id"]), action="TRANSFER_FAILED").count() == 1
    assert (
        collection(OutboxEvent).count_documents(
            {"payload.transactionId": str(failed["_id"]), "event_type": "transaction.completed"}
        )
        == 0
    )
    assert collection(LedgerEntry).count_documents({"transaction_id": failed["_id"]}) == 0

    fund(sender, 200_000)
    retried = send(sender, receiver, 600_000)
    assert (retried.transaction["status"], retried.transaction["retry_count"]) == ("COMPLETED", 1)
    assert retried.transaction["failure_reason"] == ""
    assert balances(sender, receiver) == [100_000, 600_000]
    assert_reconciled()


def test_retries_are_bounded_at_three_attempts(funded_pair):
    sender, receiver = funded_pair
    for attempt in (1, 2, 3):
        with pytest.raises(exc.TransferFailed) as raised:
            send(sender, receiver, 900_000)
        assert raised.value.transaction["retry_count"] == attempt
    with pytest.raises(exc.RetriesExhausted):
        send(sender, receiver, 900_000)
    txn = collection(Transaction).find_one({"idempotency_key": "k1"})
    assert (txn["status"], txn["retry_count"]) == ("FAILED", 3)
    assert AuditLog.objects.filter(action="TRANSFER_FAILED").count() == 3
    assert_reconciled()


def test_frozen_receiver_fails_and_succeeds_after_unfreeze(funded_pair, bank):
    sender, receiver = funded_pair
    account_set_status(account=receiver, actor=bank.admin_user, new_status=AccountStatus.FROZEN)
    with pytest.raises(exc.TransferFailed) as raised:
        send(sender, receiver, 5_000)
    assert raised.value.code == "recipient_unavailable"
    assert raised.value.transaction["failure_detail"] == "receiver_frozen"  # for staff; the sender sees the code
    assert balances(sender, receiver) == [500_000, 0]  # the debit rolled back with the rest
    account_set_status(account=receiver, actor=bank.admin_user, new_status=AccountStatus.ACTIVE)
    assert send(sender, receiver, 5_000).transaction["status"] == "COMPLETED"
    assert_reconciled()


def test_frozen_sender_cannot_move_money(funded_pair, bank):
    sender, receiver = funded_pair
    account_set_status(account=sender, actor=bank.admin_user, new_status=AccountStatus.FROZEN)
    with pytest.raises(exc.TransferFailed) as raised:
        send(sender, receiver, 5_000)
    assert raised.value.code == "sender_not_active"
    assert balances(sender, receiver) == [500_000, 0]


@pytest.mark.parametrize(
    ("paise", "key", "note", "field"),
    [
        (0, "k", "", "amount"),
        (-5, "k", "", "amount"),
        (1_000_001, "k", "", "amount"),
        (True, "k", "", "amount"),
        (100, "", "", "idempotencyKey"),
        (100, "x" * 101, "", "idempotencyKey"),
        (100, "a\nb", "", "idempotencyKey"),
        (100, "k", "n" * 141, "note"),
    ],
)
def test_invalid_requests_are_refused_before_anything_is_written(funded_pair, paise, key, note, field):
    sender, receiver = funded_pair
    with pytest.raises(ValidationFailed) as raised:
        send(sender, receiver, paise, key=key, note=note)
    assert raised.value.field == field
    assert collection(Transaction).count_documents({"from_account_id": sender.pk}) == 0


def test_self_transfer_is_refused_before_anything_is_written(funded_pair):
    sender, _ = funded_pair
    with pytest.raises(exc.SelfTransfer):
        send(sender, sender, 100)
    assert collection(Transaction).count_documents({"from_account_id": sender.pk}) == 0


def test_unknown_recipient_and_other_currency_are_the_same_recorded_refusal(funded_pair):
    sender, _ = funded_pair
    with pytest.raises(exc.TransferFailed) as unknown:
        transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id="0123456789abcdef01234567",
            amount_paise=100,
            idempotency_key="k2",
        )
    dollars = make_account(currency="USD")
    with pytest.raises(exc.TransferFailed) as other_currency:
        send(sender, dollars, 100)
    for raised, detail in ((unknown, "receiver_unknown"), (other_currency, "currency_mismatch")):
        assert raised.value.code == "recipient_unavailable"
        assert raised.value.message == "This account cannot receive payments."
        assert raised.value.transaction["failure_detail"] == detail
    assert balances(sender) == [500_000]
    assert_reconciled()


def test_key_in_flight_answers_conflict(funded_pair):
    sender, receiver = funded_pair
    now = datetime.now(UTC)
    collection(Transaction).insert_one(
        {
            "from_account_id": sender.pk,
            "to_account_id": receiver.pk,
            "amount": 100,
            "currency": "INR",
            "kind": "TRANSFER",
            "status": "PROCESSING",
            "retry_count": 0,
            "idempotency_key": "k1",
            "fingerprint": _fp(receiver, 100),
            "attempt_id": "other",
            "lease_expires_at": now + timedelta(seconds=30),
            "initiated_by": str(sender.user.pk),
            "created_at": now,
            "updated_at": now,
        }
    )
    with pytest.raises(exc.TransferInFlight) as raised:
        send(sender, receiver, 100)
    assert raised.value.status == 409


def _fp(receiver, paise):
    from transfers.services import fingerprint

    return fingerprint(kind="TRANSFER", to_account_id=receiver.pk, amount_paise=paise)


def test_stale_processing_is_recovered_as_failed_without_moving_money(funded_pair):
    sender, receiver = funded_pair
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    collection(Transaction).insert_one(
        {
            "from_account_id": sender.pk,
            "to_account_id": receiver.pk,
            "amount": 100,
            "currency": "INR",
            "kind": "TRANSFER",
            "status": "PROCESSING",
            "retry_count": 0,
            "idempotency_key": "k1",
            "note": "",
            "fingerprint": _fp(receiver, 100),
            "attempt_id": "dead-worker",
            "lease_expires_at": long_ago,
            "initiated_by": str(sender.user.pk),
            "created_at": long_ago,
            "updated_at": long_ago,
            "failure_reason": "",
            "failure_code": "",
        }
    )
    assert transfers_recover_stale() == {"found": 1, "recovered": 1, "skipped": 0}
    txn = collection(Transaction).find_one({"idempotency_key": "k1"})
    assert (txn["status"], txn["failure_code"], txn["retry_count"]) == ("FAILED", "interrupted", 0)
    assert balances(sender, receiver) == [500_000, 0]
    assert transfers_recover_stale()["found"] == 0
    # The user's retry with the same key then completes it, once.
    assert send(sender, receiver, 100).transaction["status"] == "COMPLETED"
    assert balances(sender, receiver) == [499_900, 100]
    assert_reconciled()


def test_expired_claim_is_taken_over_by_a_retry(funded_pair):
    sender, receiver = funded_pair
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    collection(Transaction).insert_one(
        {
            "from_account_id": sender.pk,
            "to_account_id": receiver.pk,
            "amount": 100,
            "currency": "INR",
            "kind": "TRANSFER",
            "status": "PROCESSING",
            "retry_count": 0,
            "idempotency_key": "k1",
            "note": "",
            "fingerprint": _fp(receiver, 100),
            "attempt_id": "dead-worker",
            "lease_expires_at": long_ago,
            "initiated_by": str(sender.user.pk),
            "created_at": long_ago,
            "updated_at": long_ago,
        }
    )
    assert send(sender, receiver, 100).transaction["status"] == "COMPLETED"
    assert balances(sender, receiver) == [499_900, 100]


def test_system_funding_is_for_the_system_user_only(bank, funded_pair):
    sender, receiver = funded_pair
    with pytest.raises(PermissionDenied):
        system_fund(actor=sender.user, to_account_id=str(receiver.pk), amount_paise=100, idempotency_key="f")
    result = system_fund(
        actor=bank.system_user, to_account_id=str(receiver.pk), amount_paise=1_000_000, idempotency_key="f"
    )
    assert result.transaction["kind"] == "SYSTEM_FUNDING"
    bank.system_account.refresh_from_db()
    assert bank.system_account.balance == -(500_000 + 1_000_000)  # no floor for the system account
    assert AuditLog.objects.filter(action="SYSTEM_TRANSFER_SUCCESS").count() == 2
    assert system_fund(
        actor=bank.system_user, to_account_id=str(receiver.pk), amount_paise=1_000_000, idempotency_key="f"
    ).replayed
    assert_reconciled()


def test_replay_answers_exactly_what_the_first_call_answered(funded_pair):
    sender, receiver = funded_pair
    first = send(sender, receiver, 1_234, note="same answer")
    again = send(sender, receiver, 1_234, note="same answer")
    assert again.replayed
    from transfers.serializers import transaction_json

    assert transaction_json(again.transaction) == transaction_json(first.transaction)
