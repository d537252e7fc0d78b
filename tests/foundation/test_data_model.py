import pytest
from bson import ObjectId
from django.db import IntegrityError
from pymongo.errors import DuplicateKeyError

from accounts.models import Account, User
from aegis.errors import AppendOnlyViolation, BusinessRuleViolation
from aegis.mongo import collection
from ledger.models import AuditLog, EntryType, LedgerEntry
from tests.factories import make_account, make_user
from transfers.models import Transaction


def test_user_email_is_unique():
    make_user(email="a@example.com")
    with pytest.raises(IntegrityError):
        User.objects.create_user("a@example.com", "another long password 1")


def test_one_account_per_user_is_enforced_by_the_database():
    user = make_user()
    Account.objects.create(user=user)
    with pytest.raises(IntegrityError):
        Account.objects.create(user=user)


def _transaction(sender, receiver, key="key-1"):
    return Transaction.objects.create(
        from_account=sender, to_account=receiver, amount=100, idempotency_key=key, fingerprint="f"
    )


def test_idempotency_key_is_unique_per_sender_account():
    sender, receiver, other = make_account(), make_account(), make_account()
    _transaction(sender, receiver)
    with pytest.raises(IntegrityError):
        _transaction(sender, receiver)
    # The same key from another sender is a different operation.
    _transaction(other, receiver)
    # The raw driver path (used by the money path) is rejected by the same index.
    with pytest.raises(DuplicateKeyError):
        collection(Transaction).insert_one(
            {"idempotency_key": "key-1", "from_account_id": sender.pk, "to_account_id": receiver.pk}
        )


def test_system_flag_is_immutable():
    user = make_user()
    user.is_system = True
    with pytest.raises(BusinessRuleViolation):
        user.save()
    with pytest.raises(BusinessRuleViolation):
        User.objects.filter(pk=user.pk).update(is_system=True)
    assert User.objects.get(pk=user.pk).is_system is False


def test_token_blacklist_has_a_ttl_index():
    from accounts.models import BlacklistedToken

    indexes = collection(BlacklistedToken).index_information()
    assert indexes["token_blacklist_ttl"]["expireAfterSeconds"] == 3 * 24 * 3600


@pytest.fixture
def ledger_entry():
    sender, receiver = make_account(), make_account()
    txn = _transaction(sender, receiver)
    return LedgerEntry.objects.create(
        account=sender, transaction=txn, type=EntryType.DEBIT, amount=100, balance_after=0, seq=1
    )


@pytest.fixture
def audit_entry():
    return AuditLog.objects.create(action="LOGIN_FAILED", status="FAILURE", details={"x": 1})


@pytest.mark.parametrize("row_fixture", ["ledger_entry", "audit_entry"])
def test_append_only_rows_cannot_be_changed_through_any_orm_path(request, row_fixture):
    row = request.getfixturevalue(row_fixture)
    model = type(row)
    attempts = {
        "save": lambda: row.save(),
        "delete": lambda: row.delete(),
        "queryset.update": lambda: model.objects.filter(pk=row.pk).update(created_at=None),
        "queryset.delete": lambda: model.objects.filter(pk=row.pk).delete(),
        "all().delete": lambda: model.objects.all().delete(),
        "bulk_update": lambda: model.objects.bulk_update([row], ["created_at"]),
        "update_or_create": lambda: model.objects.update_or_create(pk=row.pk, defaults={}),
    }
    for name, attempt in attempts.items():
        with pytest.raises(AppendOnlyViolation):
            attempt()
            pytest.fail(f"{name} did not raise")
    assert model.objects.filter(pk=row.pk).count() == 1
    assert collection(model).count_documents({"_id": ObjectId(str(row.pk))}) == 1
