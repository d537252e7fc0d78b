"""The Django admin (/django-admin/) is really read-only (issue 19): for every registered model
the add, change, delete and history pages answer 403 or 404 to a superuser, never a form; no
bulk action is offered; Groups are not there at all; money is rupees, and labels are plural."""

import pytest
from django.contrib import admin
from django.test import Client

from accounts.models import User
from tests.factories import make_account
from transfers.services import system_fund


@pytest.fixture
def superuser(bank):
    return User.objects.create_superuser("root@example.com", "pw-not-used-here")


@pytest.fixture
def admin_client(superuser):
    client = Client()
    client.force_login(superuser)
    return client


def test_every_registered_model_refuses_add_change_delete_and_history(admin_client, bank):
    account = make_account(balance=0)
    system_fund(actor=bank.system_user, to_account_id=str(account.pk), amount_paise=1_000_000, idempotency_key="a1")
    registered = admin.site._registry
    assert registered, "nothing is registered: the walk below would prove nothing"
    for model in registered:
        meta = model._meta
        base = f"/django-admin/{meta.app_label}/{meta.model_name}/"
        listing = admin_client.get(base)
        assert listing.status_code == 200, base
        obj = model._default_manager.first()
        assert obj is not None, f"{base}: no record to try the change and delete pages on"
        for url in (f"{base}add/", f"{base}{obj.pk}/change/", f"{base}{obj.pk}/delete/", f"{base}{obj.pk}/history/"):
            for method in ("get", "post"):
                response = getattr(admin_client, method)(url)
                assert response.status_code in (403, 404), (method, url, response.status_code)
                # The 403/404 page is the site's own (its sign-out form included), never the admin's
                # record form or delete confirmation.
                for mark in (b'name="_save"', b'id="' + meta.model_name.encode() + b'_form"', b'name="post"'):
                    assert mark not in response.content, (url, mark)
        html = listing.content.decode()
        assert 'name="action"' not in html, f"{base} offers a bulk action"
        assert f"{base}add/" not in html and "/change/" not in html, base
    index = admin_client.get("/django-admin/").content.decode()
    assert "Groups" not in index and "/django-admin/auth/group/" not in index
    assert admin_client.get("/django-admin/auth/group/add/").status_code == 404


def test_money_is_rupees_with_indian_grouping_and_labels_are_plural(admin_client, bank):
    # ₹1,13,456 + a ₹10,000 funding: the balance (after) reads ₹1,23,456.00, lakh grouping.
    account = make_account(balance=11_345_600)
    system_fund(actor=bank.system_user, to_account_id=str(account.pk), amount_paise=1_000_000, idempotency_key="a2")
    index = admin_client.get("/django-admin/").content.decode()
    assert "Ledger entries" in index and "entrys" not in index
    for path, shown in (
        ("ledger/ledgerentry/", ("₹1,23,456.00", "₹10,000.00")),
        ("accounts/account/", ("₹1,23,456.00",)),
        ("transfers/transaction/", ("₹10,000.00",)),
    ):
        html = admin_client.get(f"/django-admin/{path}").content.decode()
        for text in shown:
            assert text in html, (path, text)
        assert "12345600" not in html and "1000000" not in html, path
