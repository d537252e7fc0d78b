"""Reads of payees, and confirmation of payee: whom an account id pays, before any money moves.

Every read here is bounded by MAX_PAYEES (a customer's whole list) or is a point read.
"""

from __future__ import annotations

from dataclasses import dataclass

from bson import ObjectId
from django.conf import settings

from accounts.models import Account, User
from accounts.ratelimits import limit_hit
from accounts.selectors import party_name
from aegis.errors import NotFound, ValidationFailed
from aegis.ids import parse_object_id
from aegis.mongo import collection
from payees.models import MAX_PAYEES, Payee

NAME_LOOKUP_GROUP = "payee-lookup"


class NoSuchRecipient(NotFound):
    code = "recipient_not_found"
    message = "No Aegis account has that ID. Check it with the person you are paying."


class OwnAccount(ValidationFailed):
    code = "own_account"
    message = "That is your own account: choose someone else to pay."


@dataclass(frozen=True)
class Recipient:
    """Whom an account id pays, as the payer may see it."""

    account_id: str
    name: str  # the holder's registered name, masked ("Ravi K.")
    payee: Payee | None  # the payer's saved payee for this account, if any

    @property
    def label(self) -> str:
        """ "Mum (Ravi K.)" for a saved payee, else the masked name."""
        return f"{self.payee.nickname} ({self.name})" if self.payee else self.name


def payees_for_user(*, user: User) -> list[Payee]:
    """The customer's payees by nickname (payee_owner_nickname; at most MAX_PAYEES)."""
    return list(Payee.objects.filter(owner=user).order_by("nickname", "id")[:MAX_PAYEES])


def _payee_found(query: dict) -> Payee | None:
    """One payee by a plain `find`: the ORM sends two equalities as `$and`, which the embedded
    server plans as a scan of every customer's payees (tests/payees/test_payee_query_plans.py)."""
    doc = collection(Payee).find_one(query)
    if doc is None:
        return None
    fields = Payee._meta.concrete_fields
    return Payee.from_db("default", [f.attname for f in fields], [doc.get(f.column) for f in fields])


def payee_get_owned(*, user: User, payee_id) -> Payee:
    """One of the caller's payees; another customer's, unknown and malformed ids are the same 404."""
    oid = parse_object_id(payee_id)
    # By _id alone (a point read), the owner checked here: with `owner_id` in the filter too the
    # embedded server's planner finds no index holding both and scans the collection.
    payee = _payee_found({"_id": oid}) if oid else None
    if payee is None or payee.owner_id != user.pk:
        raise NotFound(thing="Payee")
    return payee


def payee_for_account(*, user: User, account_id) -> Payee | None:
    oid = parse_object_id(account_id)
    return _payee_found({"owner_id": user.pk, "account_id": oid}) if oid else None  # payee_owner_account


def payee_nicknames(*, user: User) -> dict[ObjectId, str]:
    """{account _id: nickname} of every payee of `user`: one read of at most MAX_PAYEES small rows."""
    rows = collection(Payee).find({"owner_id": user.pk}, {"account_id": 1, "nickname": 1}).limit(MAX_PAYEES)
    return {row["account_id"]: row["nickname"] for row in rows}


def recipient_lookup(*, user: User, account_id, count: bool = True) -> Recipient:
    """Whom `account_id` pays: the holder's masked registered name, and the caller's payee for it.

    A look-up of an account that is not already one of the caller's payees counts against
    AEGIS_RATELIMIT_NAME_LOOKUP (per customer), found or not, so the names behind account ids
    cannot be harvested by trying ids; past it: RateLimited (429). `count=False` only for a
    look-up the same request already counted.
    """
    oid = parse_object_id(account_id)
    if oid is None:
        raise ValidationFailed("Enter a 24-character account ID (letters a-f and digits).", field="accountId")
    payee = payee_for_account(user=user, account_id=oid)
    if payee is None and count:
        limit_hit(group=NAME_LOOKUP_GROUP, rate=settings.AEGIS_RATELIMIT_NAME_LOOKUP, key=f"user:{user.pk}")
    account = collection(Account).find_one({"_id": oid}, {"user_id": 1})
    holder = collection(User).find_one({"_id": account["user_id"]}, {"name": 1, "is_system": 1}) if account else None
    if holder is None or holder.get("is_system"):  # the funding account is no one's payee
        raise NoSuchRecipient()
    if holder["_id"] == user.pk:
        raise OwnAccount(field="accountId")
    return Recipient(account_id=str(oid), name=party_name(holder, full=False), payee=payee)
