"""Staff actions name the staff member in their audit entries (issue 13, item 14)."""

import pytest

from accounts.models import AccountStatus, Role
from accounts.services import account_set_status
from aegis.mongo import collection
from ledger.models import AuditLog
from tests.factories import PASSWORD, make_account, make_user, park_outbox_events
from tests.pages.conftest import client_for
from transfers.models import Transaction
from transfers.services import system_fund


def test_a_console_funding_names_the_staff_member_and_still_debits_the_system_account(bank, settings):
    settings.AEGIS_RATELIMIT_STRICT = "10000/15m"
    staff = make_user(role=Role.ADMIN, name="Priya Staff")
    receiver = make_account()
    response = client_for(staff).post(
        "/staff/fund", {"to_account": str(receiver.pk), "amount": "250", "idempotency_key": "s-1", "password": PASSWORD}
    )
    assert response.status_code in (200, 302), response.content
    txn = collection(Transaction).find_one({"idempotency_key": "s-1"})
    assert txn["status"] == "COMPLETED" and txn["from_account_id"] == bank.system_account.pk
    assert (txn["initiated_by"], txn["requested_by"]) == (str(bank.system_user.pk), str(staff.pk))
    entry = AuditLog.objects.get(action="SYSTEM_TRANSFER_SUCCESS", transaction_id=str(txn["_id"]))
    assert (entry.user_id, entry.actor_id) == (str(bank.system_user.pk), str(staff.pk))


def test_the_system_users_own_funding_names_the_system_user(bank):
    receiver = make_account()
    result = system_fund(actor=bank.system_user, to_account_id=str(receiver.pk), amount_paise=100, idempotency_key="k")
    entry = AuditLog.objects.get(action="SYSTEM_TRANSFER_SUCCESS", transaction_id=str(result.transaction["_id"]))
    assert entry.actor_id == str(bank.system_user.pk)


def test_only_staff_may_be_named_as_requesting_a_funding(bank):
    from aegis.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        system_fund(
            actor=bank.system_user,
            to_account_id=str(make_account().pk),
            amount_paise=100,
            idempotency_key="k",
            requested_by=make_user(),
        )


def test_freeze_unfreeze_and_requeue_name_the_staff_member(bank, settings):
    staff = make_user(role=Role.ADMIN)
    account = make_account()
    account_set_status(account=account, actor=staff, new_status=AccountStatus.FROZEN)
    account_set_status(account=account, actor=staff, new_status=AccountStatus.ACTIVE)
    for action in ("ACCOUNT_FROZEN", "ACCOUNT_UNFROZEN"):
        entry = AuditLog.objects.get(action=action)
        assert (entry.user_id, entry.actor_id) == (str(account.user_id), str(staff.pk))

    from events.services import outbox_requeue

    park_outbox_events(settings)
    assert outbox_requeue(actor=staff) >= 1
    assert AuditLog.objects.get(action="OUTBOX_REQUEUED").actor_id == str(staff.pk)


def test_staff_see_the_real_reason_a_recipient_refused(bank, fund, settings):
    from transfers.exceptions import TransferFailed
    from transfers.services import transfer_create

    staff = make_user(role=Role.ADMIN)
    sender, frozen = make_account(), make_account(status=AccountStatus.FROZEN)
    fund(sender, 10_000)
    with pytest.raises(TransferFailed):
        transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(frozen.pk),
            amount_paise=100,
            idempotency_key="to-frozen",
        )
    txn = collection(Transaction).find_one({"idempotency_key": "to-frozen"})
    staff_page = client_for(staff).get(f"/staff/transactions/{txn['_id']}").content.decode()
    assert "receiver_frozen" in staff_page and "This account cannot receive payments." in staff_page
    customer_page = client_for(sender.user).get("/transactions").content.decode()
    assert "cannot receive payments" in customer_page and "receiver_frozen" not in customer_page
