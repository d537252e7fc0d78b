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
    form = {"to_account": str(sender.pk), "amount": "2500", "idempotency_key": key, "password": PASSWORD}
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


def test_funding_needs_a_recent_password(staff, sender, bootstrap, settings):
    client = htmx_client_for(staff)
    assert 'name="password"' in client_for(staff).get("/staff/fund").content.decode()
    form = {"to_account": str(sender.pk), "amount": "100", "idempotency_key": "fund-reauth"}

    refused = client.post("/staff/fund", form).content.decode()
    assert "Confirm with your password" in refused and 'value="fund-reauth"' in refused  # same intent kept
    wrong = client.post("/staff/fund", form | {"password": "not the password at all"}).content.decode()
    assert "That password is not right." in wrong
    assert Account.objects.get(pk=sender.pk).balance == 0
    assert not Transaction.objects.filter(idempotency_key="fund-reauth").exists()

    done = client.post("/staff/fund", form | {"password": PASSWORD}).content.decode()
    assert 'data-status="COMPLETED"' in done and 'name="password"' not in done  # fresh for a while
    second = {"to_account": str(sender.pk), "amount": "50", "idempotency_key": "fund-reauth-2"}
    assert 'data-status="COMPLETED"' in client.post("/staff/fund", second).content.decode()
    assert Account.objects.get(pk=sender.pk).balance == 15_000

    session = client.session  # once the window has passed, the password is needed again
    session["aegis_reauth_at"] -= settings.AEGIS_REAUTH_SECONDS + 1
    session.save()
    third = {"to_account": str(sender.pk), "amount": "50", "idempotency_key": "fund-reauth-3"}
    assert "Confirm with your password" in client.post("/staff/fund", third).content.decode()
    assert Account.objects.get(pk=sender.pk).balance == 15_000


def test_friendly_error_pages(db):
    from django.test import Client

    response = Client().get("/no-such-page")
    assert response.status_code == 404 and b"Page not found" in response.content
