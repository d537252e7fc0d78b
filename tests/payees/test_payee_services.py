"""Payees and confirmation of payee through the services, against the real server."""

from __future__ import annotations

import pytest
from bson import ObjectId

from aegis.errors import NotFound, RateLimited, ValidationFailed
from aegis.mongo import collection
from ledger.models import AuditLog
from payees import services
from payees.models import Payee
from payees.selectors import (
    NoSuchRecipient,
    OwnAccount,
    payee_get_owned,
    payee_nicknames,
    payees_for_user,
    recipient_lookup,
)
from tests.factories import make_account, make_user


@pytest.fixture
def asha():
    return make_account(user=make_user(name="Asha Verma"))


@pytest.fixture
def ravi():
    return make_account(user=make_user(name="  Ravi   Kumar "))


def test_lookup_shows_the_masked_registered_name(asha, ravi):
    found = recipient_lookup(user=asha.user, account_id=str(ravi.pk))
    assert (found.account_id, found.name, found.payee) == (str(ravi.pk), "Ravi K.", None)


@pytest.mark.parametrize("bad", ["", "zz", "x" * 24, "6579c0ffee6579c0ffee65"])
def test_lookup_refuses_a_malformed_id(asha, bad):
    with pytest.raises(ValidationFailed) as err:
        recipient_lookup(user=asha.user, account_id=bad)
    assert err.value.field == "accountId"


def test_lookup_of_an_unknown_or_own_account(asha):
    with pytest.raises(NoSuchRecipient):
        recipient_lookup(user=asha.user, account_id=str(ObjectId()))
    with pytest.raises(OwnAccount):
        recipient_lookup(user=asha.user, account_id=str(asha.pk))


def test_lookups_are_limited_per_customer_and_saved_payees_are_free(settings, asha, ravi):
    settings.AEGIS_RATELIMIT_NAME_LOOKUP = "3/1h"
    services.payee_add(user=asha.user, account_id=str(ravi.pk), nickname="Ravi")  # 1
    for _ in range(5):  # a saved payee's name is known already: not counted
        assert recipient_lookup(user=asha.user, account_id=str(ravi.pk)).payee is not None
    others = [make_account() for _ in range(2)]
    recipient_lookup(user=asha.user, account_id=str(others[0].pk))  # 2
    with pytest.raises(NoSuchRecipient):
        recipient_lookup(user=asha.user, account_id=str(ObjectId()))  # 3: a miss counts too
    with pytest.raises(RateLimited):
        recipient_lookup(user=asha.user, account_id=str(others[1].pk))
    # Another customer has their own allowance.
    assert recipient_lookup(user=others[0].user, account_id=str(ravi.pk)).name == "Ravi K."


def test_add_rename_remove_are_audited(asha, ravi):
    payee = services.payee_add(user=asha.user, account_id=str(ravi.pk), nickname="  Ravi   flat ")
    stored = Payee.objects.get(pk=payee.pk)
    assert (stored.nickname, stored.holder_name, stored.account_id) == ("Ravi flat", "Ravi K.", ravi.pk)
    assert payee_nicknames(user=asha.user) == {ravi.pk: "Ravi flat"}
    services.payee_rename(user=asha.user, payee_id=str(payee.pk), nickname="Rent")
    assert [p.nickname for p in payees_for_user(user=asha.user)] == ["Rent"]
    services.payee_remove(user=asha.user, payee_id=str(payee.pk))
    assert payees_for_user(user=asha.user) == []
    actions = [a["action"] for a in collection(AuditLog).find({"user_id": str(asha.user.pk)}).sort("created_at", 1)]
    assert actions == ["PAYEE_ADDED", "PAYEE_RENAMED", "PAYEE_REMOVED"]


def test_add_refuses_duplicates_bad_nicknames_and_own_account(asha, ravi):
    services.payee_add(user=asha.user, account_id=str(ravi.pk), nickname="Ravi")
    with pytest.raises(ValidationFailed, match="already your payee"):
        services.payee_add(user=asha.user, account_id=str(ravi.pk), nickname="Again")
    for bad in ["", "   ", "x" * 41, "nul\x00here"]:
        with pytest.raises(ValidationFailed) as err:
            services.payee_add(user=asha.user, account_id=str(make_account().pk), nickname=bad)
        assert err.value.field == "nickname"
    with pytest.raises(OwnAccount):
        services.payee_add(user=asha.user, account_id=str(asha.pk), nickname="Me")
    assert Payee.objects.filter(owner=asha.user).count() == 1


def test_another_customers_payee_is_not_found(asha, ravi):
    payee = services.payee_add(user=asha.user, account_id=str(ravi.pk), nickname="Ravi")
    with pytest.raises(NotFound):
        payee_get_owned(user=ravi.user, payee_id=str(payee.pk))
    with pytest.raises(NotFound):
        services.payee_remove(user=ravi.user, payee_id=str(payee.pk))
    assert Payee.objects.filter(pk=payee.pk).exists()
