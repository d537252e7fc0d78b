"""The staff console: admins only, freeze/unfreeze in place or via a confirmation page, filters,
details (modal partial or page), stats and funding."""

from accounts.models import Account
from tests.factories import PASSWORD
from tests.pages.conftest import client_for, htmx_client_for
from transfers.models import Transaction


def test_staff_pages_are_for_admins_only(sender):
    assert client_for(sender.user).get("/staff/users").status_code == 403


def test_staff_pages_render(staff, sender, bootstrap):
    client = client_for(staff)
    for path in ("/staff/users", "/staff/transactions", "/staff/stats", "/staff/fund"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert sender.user.email in client.get("/staff/users?q=" + sender.user.email[:5]).content.decode()
    assert client.get("/staff/", follow=True).redirect_chain[-1][0] == "/staff/users"


def test_freeze_in_place_and_without_javascript(staff, sender):
    # In place (HTMX), with the staff member's password (re-authentication for sensitive actions).
    row = htmx_client_for(staff).post(f"/staff/accounts/{sender.pk}/status", {"status": "FROZEN", "password": PASSWORD})
    html = row.content.decode()
    assert html.lstrip().startswith("<tr") and "FROZEN" in html and 'data-testid="unfreeze"' in html
    assert Account.objects.get(pk=sender.pk).status == "FROZEN"
    client = client_for(staff)
    confirm = client.get(f"/staff/accounts/{sender.pk}/status?status=ACTIVE").content.decode()
    assert "Unfreeze this account?" in confirm and 'name="password"' in confirm
    form = {"status": "ACTIVE", "password": PASSWORD}
    assert client.post(f"/staff/accounts/{sender.pk}/status", form).status_code == 302
    assert Account.objects.get(pk=sender.pk).status == "ACTIVE"


def test_freeze_needs_a_recent_password(staff, sender, settings):
    client = client_for(staff)
    url = f"/staff/accounts/{sender.pk}/status"
    # Without it: the confirmation page asks again (no JS), or HTMX is sent there; nothing changes.
    refused = client.post(url, {"status": "FROZEN"})
    assert refused.status_code == 200 and b"Confirm with your password" in refused.content
    hx = htmx_client_for(staff).post(url, {"status": "FROZEN"})
    assert hx["HX-Redirect"] == f"{url}?status=FROZEN"
    wrong = client.post(url, {"status": "FROZEN", "password": "not the password at all"})
    assert b"That password is not right." in wrong.content
    assert Account.objects.get(pk=sender.pk).status == "ACTIVE"
    # With it: done, and for AEGIS_REAUTH_SECONDS the list acts in place without asking again.
    assert client.post(url, {"status": "FROZEN", "password": PASSWORD}).status_code == 302
    assert Account.objects.get(pk=sender.pk).status == "FROZEN"
    assert "hx-post" in client.get("/staff/users").content.decode()
    assert client.post(url, {"status": "ACTIVE"}).status_code == 302
    assert Account.objects.get(pk=sender.pk).status == "ACTIVE"
    # Once the window has passed, the password is needed again (and the list links to the page).
    session = client.session
    session["aegis_reauth_at"] -= settings.AEGIS_REAUTH_SECONDS + 1
    session.save()
    assert "hx-post" not in client.get("/staff/users").content.decode()
    assert b"Confirm with your password" in client.post(url, {"status": "FROZEN"}).content
    assert Account.objects.get(pk=sender.pk).status == "ACTIVE"


def test_fund_filter_and_details(staff, sender, bootstrap):
    client = client_for(staff)
    key = "fund-key-1"
    form = {"to_account": str(sender.pk), "amount": "2500", "idempotency_key": key}
    assert client.post("/staff/fund", form).status_code == 302
    assert client.post("/staff/fund", form).status_code == 302  # a resubmit replays
    assert Account.objects.get(pk=sender.pk).balance == 250_000
    txn = Transaction.objects.get(idempotency_key=key)
    listing = client.get(f"/staff/transactions?status=COMPLETED&account={sender.pk}").content.decode()
    assert f"/staff/transactions/{txn.pk}" in listing
    assert "No transactions match" in client.get("/staff/transactions?status=FAILED").content.decode()
    assert "Enter a 24-character" in client.get("/staff/transactions?account=zzz").content.decode()
    modal = htmx_client_for(staff).get(f"/staff/transactions/{txn.pk}").content.decode()
    assert 'data-testid="txn-modal"' in modal and key in modal and "<html" not in modal
    page = client.get(f"/staff/transactions/{txn.pk}").content.decode()
    assert "<html" in page and key in page
    assert client.get("/staff/transactions/nope").status_code == 404


def test_friendly_error_pages(db):
    from django.test import Client

    response = Client().get("/no-such-page")
    assert response.status_code == 404 and b"Page not found" in response.content
