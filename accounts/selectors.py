"""Reads for users and accounts. Ownership is enforced here: a foreign or malformed id is 404."""

from __future__ import annotations

from bson import ObjectId
from django.db.models import QuerySet

from accounts.models import Account, User
from aegis.errors import NotFound


def _object_id(value) -> ObjectId | None:
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str) and ObjectId.is_valid(value) and len(value) == 24:
        return ObjectId(value)
    return None


def account_get(*, account_id) -> Account:
    """Any account by id (staff use); NotFound for a malformed or unknown id."""
    oid = _object_id(account_id)
    account = Account.objects.select_related("user").filter(pk=oid).first() if oid else None
    if account is None:
        raise NotFound(thing="Account")
    return account


def account_get_owned(*, user: User, account_id) -> Account:
    """The caller's own account by id.

    Another user's id, an unknown id and a malformed id all raise the same NotFound (404), so
    the answer reveals nothing about accounts the caller does not own.
    """
    oid = _object_id(account_id)
    account = Account.objects.filter(pk=oid, user=user).first() if oid and user.is_authenticated else None
    if account is None:
        raise NotFound(thing="Account")
    return account


def accounts_for_user(*, user: User) -> QuerySet[Account]:
    return Account.objects.filter(user=user).order_by("created_at")


def account_for_user(*, user: User) -> Account | None:
    """The user's one account, if they have opened it."""
    return accounts_for_user(user=user).first()
