"""An outbox event exists iff its change committed (DESIGN §4 property 8), freezes included."""

import pytest

from accounts.models import AccountStatus
from accounts.services import account_set_status
from aegis.errors import BusinessRuleViolation
from aegis.mongo import collection
from ledger.models import AuditAction, AuditLog
from tests.notifications.conftest import events
from transfers import exceptions as exc
from transfers.services import transfer_create


def test_completed_transfer_has_exactly_one_completed_event(funded_pair):
    sender, receiver = funded_pair
    result = transfer_create(
        actor=sender.user,
        from_account_id=str(sender.pk),
        to_account_id=str(receiver.pk),
        amount_paise=12_345,
        idempotency_key="k1",
        request_id="req-abc",
    )
    mine = events(aggregate_id=str(sender.pk))
    assert [e["event_type"] for e in mine] == ["transaction.completed"]
    assert mine[0]["payload"]["transactionId"] == str(result.transaction["_id"])
    assert mine[0]["payload"]["requestId"] == "req-abc"
    assert mine[0]["status"] == "PENDING"


def test_refused_transfer_has_no_completed_event(funded_pair):
    sender, receiver = funded_pair
    with pytest.raises(exc.TransferFailed):
        transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(receiver.pk),
            amount_paise=900_000,
            idempotency_key="too-much",
        )
    assert [e["event_type"] for e in events(aggregate_id=str(sender.pk))] == ["transaction.failed"]


def test_rejected_before_any_transaction_has_no_event(funded_pair):
    sender, _ = funded_pair
    with pytest.raises(exc.SelfTransfer):
        transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(sender.pk),
            amount_paise=100,
            idempotency_key="self",
        )
    assert events(aggregate_id=str(sender.pk)) == []


def test_rolled_back_transfer_has_no_event(funded_pair):
    from aegis.mongo import get_client

    sender, receiver = funded_pair
    admin = get_client().admin
    # Let the claim, audit and outbox inserts through, then fail the ledger insert (non-transient):
    # the money transaction aborts after its outbox insert, so that insert must vanish with it.
    admin.command(
        {"configureFailPoint": "failCommand", "mode": {"skip": 3}, "data": {"failCommands": ["insert"], "errorCode": 8}}
    )
    try:
        with pytest.raises(exc.TransferBusy):
            transfer_create(
                actor=sender.user,
                from_account_id=str(sender.pk),
                to_account_id=str(receiver.pk),
                amount_paise=100,
                idempotency_key="boom",
            )
    finally:
        admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    from transfers.models import Transaction

    claim = collection(Transaction).find_one({"idempotency_key": "boom"})
    assert claim is not None and claim["status"] == "PROCESSING"  # the claim got in; the transaction did not
    assert events(aggregate_id=str(sender.pk)) == []
    assert collection(AuditLog).count_documents({"action": AuditAction.TRANSFER_SUCCESS}) == 0
    sender.refresh_from_db()
    assert sender.balance == 500_000


def test_freeze_and_unfreeze_write_status_audit_and_event_together(bank, funded_pair):
    _, account = funded_pair
    account_set_status(account=account, actor=bank.admin_user, new_status=AccountStatus.FROZEN, request_id="r-1")
    account_set_status(account=account, actor=bank.admin_user, new_status=AccountStatus.ACTIVE)
    mine = events(aggregate_id=str(account.pk))
    assert [e["event_type"] for e in mine] == ["account.frozen", "account.unfrozen"]
    assert mine[0]["payload"] == {
        "accountId": str(account.pk),
        "userId": str(account.user_id),
        "status": "FROZEN",
        "by": str(bank.admin_user.pk),
        "requestId": "r-1",
    }
    kinds = [AuditAction.ACCOUNT_FROZEN, AuditAction.ACCOUNT_UNFROZEN]
    audits = list(collection(AuditLog).find({"details.account": str(account.pk), "action": {"$in": kinds}}))
    assert [a["action"] for a in audits] == [AuditAction.ACCOUNT_FROZEN, AuditAction.ACCOUNT_UNFROZEN]
    assert audits[0]["request_id"] == "r-1"


def test_refused_freeze_writes_nothing(bank, funded_pair):
    _, account = funded_pair
    account_set_status(account=account, actor=bank.admin_user, new_status=AccountStatus.FROZEN)
    with pytest.raises(BusinessRuleViolation, match="already frozen"):
        account_set_status(account=account, actor=bank.admin_user, new_status=AccountStatus.FROZEN)
    assert [e["event_type"] for e in events(aggregate_id=str(account.pk))] == ["account.frozen"]
    assert collection(AuditLog).count_documents({"action": AuditAction.ACCOUNT_FROZEN}) == 1


def test_freeze_rolls_back_when_the_outbox_write_fails(bank, funded_pair, fail_point):
    _, account = funded_pair
    fail_point({"failCommands": ["insert"], "errorCode": 8}, times=1)  # the audit insert fails
    with pytest.raises(Exception):  # noqa: B017
        account_set_status(account=account, actor=bank.admin_user, new_status=AccountStatus.FROZEN)
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE
    assert events(aggregate_id=str(account.pk)) == []
    assert collection(AuditLog).count_documents({"action": AuditAction.ACCOUNT_FROZEN}) == 0
