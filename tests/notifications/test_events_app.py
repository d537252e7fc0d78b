"""The events app owns the outbox; audit entries commit with the change they record."""

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from accounts.models import AccountStatus, Role, User
from accounts.services import account_set_status, user_password_change, user_sign_out_everywhere
from aegis.mongo import get_db
from events.models import DispatcherHeartbeat, OutboxDelivery, OutboxEvent
from ledger.models import AuditAction, AuditLog
from tests.factories import PASSWORD, make_account, make_user

pytestmark = pytest.mark.django_db


def test_outbox_models_live_in_events_and_keep_their_collections():
    assert {m._meta.app_label for m in (OutboxEvent, OutboxDelivery, DispatcherHeartbeat)} == {"events"}
    assert [OutboxEvent._meta.db_table, OutboxDelivery._meta.db_table, DispatcherHeartbeat._meta.db_table] == [
        "outbox_events",
        "outbox_deliveries",
        "outbox_dispatchers",
    ]
    assert "outbox_status_created" in get_db()["outbox_events"].index_information()  # the migrated test DB
    for label in ("transfers", "notifications"):
        assert not any(m.__name__.startswith(("Outbox", "Dispatcher")) for m in apps.get_app_config(label).get_models())


def test_models_and_migrations_agree():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # SystemExit(1) if a change is missing
    assert "No changes detected" in out.getvalue()


def test_freeze_signs_the_owner_out_everywhere_in_the_service():
    staff = make_user(role=Role.ADMIN)
    account = make_account()
    before = User.objects.get(pk=account.user_id).auth_epoch
    account_set_status(account=account, actor=staff, new_status=AccountStatus.FROZEN)
    assert User.objects.get(pk=account.user_id).auth_epoch == before + 1
    entry = AuditLog.objects.get(action=AuditAction.SIGNED_OUT_EVERYWHERE, user_id=str(account.user_id))
    frozen = AuditLog.objects.get(action=AuditAction.ACCOUNT_FROZEN)
    assert entry.details == {"reason": "account_frozen"} and entry.created_at == frozen.created_at  # one write
    account_set_status(account=account, actor=staff, new_status=AccountStatus.ACTIVE)  # unfreezing ends nothing
    assert User.objects.get(pk=account.user_id).auth_epoch == before + 1


def test_password_change_and_sign_out_commit_with_their_audit_entries():
    user = make_user()
    epoch = user.auth_epoch
    user_password_change(user=user, current_password=PASSWORD, new_password="a-brand-new-passphrase-42")
    stored = User.objects.get(pk=user.pk)
    assert stored.check_password("a-brand-new-passphrase-42") and stored.auth_epoch == user.auth_epoch == epoch + 1
    assert AuditLog.objects.filter(action=AuditAction.PASSWORD_CHANGED, user_id=str(user.pk)).count() == 1
    user_sign_out_everywhere(user=user, reason="elsewhere")
    assert User.objects.get(pk=user.pk).auth_epoch == user.auth_epoch == epoch + 2
    reasons = AuditLog.objects.filter(action=AuditAction.SIGNED_OUT_EVERYWHERE, user_id=str(user.pk))
    assert sorted(e.details["reason"] for e in reasons) == ["elsewhere", "password_changed"]
