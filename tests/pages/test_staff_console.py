"""The staff console: admins only, freeze/unfreeze in place or via a confirmation page, filters,
details (modal partial or page), stats and funding."""

from accounts.models import Account
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
    row = htmx_client_for(staff).post(f"/staff/accounts/{sender.pk}/status", {"status": "FROZEN"})
    html = row.content.decode()
    assert html.lstrip().startswith("<tr") and "FROZEN" in html and 'data-testid="unfreeze"' in html
    assert Account.objects.get(pk=sender.pk).status == "FROZEN"
    client = client_for(staff)
    confirm = client.get(f"/staff/accounts/{sender.pk}/status?status=ACTIVE").content.decode()
    assert "Unfreeze this account?" in confirm
    assert client.post(f"/staff/accounts/{sender.pk}/status", {"status": "ACTIVE"}).status_code == 302
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
