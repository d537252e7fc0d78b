"""Accounts over the API: one per user, owner-only reads, admin freeze/unfreeze rules."""

import pytest
from bson import ObjectId

from accounts.models import Account, AccountStatus
from accounts.services import system_bootstrap
from ledger.models import AuditLog
from tests.accounts.conftest import api_as
from tests.factories import make_account, make_user


def test_create_account_then_a_second_attempt_is_409(user):
    client = api_as(user)
    response = client.post("/api/accounts")
    assert response.status_code == 201
    account = response.json()["account"]
    assert account["user"] == str(user.pk)
    assert account["status"] == "ACTIVE"
    assert account["currency"] == "INR"
    assert account["balance"] == 0
    again = client.post("/api/accounts")
    assert again.status_code == 409
    assert again.json() == {"success": False, "message": "You already have an account.", "code": "account_exists"}
    assert Account.objects.filter(user=user).count() == 1


def test_list_shows_only_the_callers_accounts(user):
    mine = make_account(user=user, balance=150050)
    make_account()
    response = api_as(user).get("/api/accounts")
    assert response.status_code == 200
    (row,) = response.json()["accounts"]
    assert row["_id"] == str(mine.pk)
    assert row["balance"] == 1500.5
    assert set(row) == {"_id", "user", "status", "currency", "balance", "createdAt"}


def test_balance_of_an_owned_account(user):
    account = make_account(user=user, balance=250000)
    response = api_as(user).get(f"/api/accounts/balance/{account.pk}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "accountId": str(account.pk), "balance": 2500, "currency": "INR"}


@pytest.mark.parametrize("account_id", ["foreign", str(ObjectId()), "not-an-id", "1" * 24 + "z", "%00"])
def test_balance_of_a_foreign_unknown_or_malformed_id_is_the_same_404(user, account_id):
    if account_id == "foreign":
        account_id = str(make_account(balance=999).pk)
    response = api_as(user).get(f"/api/accounts/balance/{account_id}")
    assert response.status_code == 404
    assert response.json() == {"success": False, "message": "Account not found.", "code": "not_found"}


# --- freeze / unfreeze ----------------------------------------------------------------------
def freeze(client, account_id, action="freeze"):
    return client.patch(f"/api/admin/{action}/{account_id}")


def test_admin_freezes_and_unfreezes_with_audit(admin, account):
    client = api_as(admin)
    response = freeze(client, account.pk)
    assert response.status_code == 200
    assert response.json()["account"]["status"] == "FROZEN"
    response = freeze(client, account.pk, "unfreeze")
    assert response.status_code == 200
    assert response.json()["account"]["status"] == "ACTIVE"
    logs = AuditLog.objects.filter(action__in=["ACCOUNT_FROZEN", "ACCOUNT_UNFROZEN"]).order_by("created_at")
    assert [log.action for log in logs] == ["ACCOUNT_FROZEN", "ACCOUNT_UNFROZEN"]
    assert all(log.details == {"account": str(account.pk), "by": str(admin.pk)} for log in logs)


def test_cannot_freeze_a_frozen_account(admin, account):
    client = api_as(admin)
    freeze(client, account.pk)
    response = freeze(client, account.pk)
    assert response.status_code == 422
    assert response.json()["message"] == "Account is already frozen."


def test_cannot_freeze_or_unfreeze_a_closed_account(admin):
    account = make_account(status=AccountStatus.CLOSED)
    client = api_as(admin)
    assert freeze(client, account.pk).status_code == 422
    assert freeze(client, account.pk, "unfreeze").status_code == 422
    account.refresh_from_db()
    assert account.status == AccountStatus.CLOSED


def test_unfreeze_only_a_frozen_account(admin, account):
    response = freeze(api_as(admin), account.pk, "unfreeze")
    assert response.status_code == 422
    assert response.json()["message"] == "Account is not frozen."


def test_system_account_cannot_be_frozen(admin, tmp_path):
    result = system_bootstrap(credentials_path=tmp_path / "credentials.json")
    assert freeze(api_as(admin), result.system_account.pk).status_code == 422


def test_freeze_with_unknown_or_malformed_id_is_404(admin):
    client = api_as(admin)
    assert freeze(client, ObjectId()).status_code == 404
    assert freeze(client, "garbage").status_code == 404


def test_only_admins_may_freeze(user, account):
    other = make_account()
    response = freeze(api_as(user), other.pk)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    other.refresh_from_db()
    assert other.status == AccountStatus.ACTIVE
    assert freeze(api_as(make_user()), account.pk, "unfreeze").status_code == 403


def test_wrong_method_is_405_with_allow(admin, account):
    response = api_as(admin).get(f"/api/admin/freeze/{account.pk}")
    assert response.status_code == 405
    assert response["Allow"] == "PATCH"
    assert response.json()["code"] == "method_not_allowed"
