"""The transfer page: server-issued keys, retries with the same key, PRG, HTMX partials."""

import re

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from ledger.models import LedgerEntry
from tests.pages.conftest import client_for, htmx_client_for
from transfers.models import Transaction
from transfers.services import system_fund

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
TOKEN = re.compile(r'name="review_token" value="([^"]+)"')


def send(client, form: dict):
    """Review, tick "I am paying ...", send: the one way a new transfer leaves the page."""
    reviewed = client.post("/transfer", {"step": "review", **form}).content.decode()
    token = TOKEN.search(reviewed).group(1)
    key = KEY.search(reviewed).group(1)  # the review renews a key that carried another intent
    return client.post(
        "/transfer", form | {"idempotency_key": key, "step": "send", "review_token": token, "confirm_name": "on"}
    )


def issued_key(client) -> str:
    return KEY.search(client.get("/transfer").content.decode()).group(1)


def fund(bootstrap, account, paise):
    system_fund(
        actor=bootstrap.system_user,
        to_account_id=str(account.pk),
        amount_paise=paise,
        idempotency_key=f"f-{account.pk}-{paise}",
    )


def test_the_form_carries_a_server_issued_key(sender):
    client = client_for(sender.user)
    first, second = issued_key(client), issued_key(client)
    assert len(first) == 36 and first != second


def test_a_resubmitted_form_moves_money_once(bootstrap, sender, receiver):
    fund(bootstrap, sender, 100_000)
    client = client_for(sender.user)
    key = issued_key(client)
    form = {"to_account": str(receiver.pk), "amount": "150.50", "note": "rent", "idempotency_key": key}
    response = send(client, form)
    assert response.status_code == 302 and response["Location"] == f"/transfer?key={key}"
    for _ in range(2):  # the same form pressed again: a replay, and the page says so
        response = client.post("/transfer", form | {"step": "send", "confirm_name": "on"})
        assert response.status_code == 302 and response["Location"].startswith(f"/transfer?key={key}")
        assert "replayed=1" in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert 'data-status="COMPLETED"' in page and key in page and "nothing was sent again" in page
    assert Account.objects.get(pk=receiver.pk).balance == 15_050
    assert Account.objects.get(pk=sender.pk).balance == 100_000 - 15_050
    assert Transaction.objects.filter(idempotency_key=key).count() == 1


def test_changing_the_amount_gets_a_new_key(bootstrap, sender, receiver):
    fund(bootstrap, sender, 100_000)
    client = htmx_client_for(sender.user)
    key = issued_key(client_for(sender.user))
    form = {"to_account": str(receiver.pk), "amount": "10", "idempotency_key": key}
    send(client, form)
    reviewed = client.post("/transfer", {"step": "review", **form, "amount": "20"}).content.decode()
    assert KEY.search(reviewed).group(1) != key  # the old key carries the ₹10 transfer
    send(client, form | {"amount": "20"})
    assert Account.objects.get(pk=receiver.pk).balance == 3_000
    assert Transaction.objects.filter(from_account=sender.pk).count() == 2


def test_htmx_gets_the_panel_partial_with_vary(sender, receiver):
    client = htmx_client_for(sender.user)
    response = send(client, {"to_account": str(receiver.pk), "amount": "5", "idempotency_key": "k-1"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="transfer-panel"') and "<html" not in html
    assert "HX-Request" in response["Vary"]
    assert "Insufficient funds" in html and 'data-testid="retry"' in html
    assert "aegis:toasts" in response["HX-Trigger"]


def test_retry_with_the_same_key_until_exhausted(sender, receiver):
    client = htmx_client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "5", "idempotency_key": "k-2"}
    html = send(client, form).content.decode()
    for attempt in (1, 2):
        assert f'data-testid="attempts-used">{attempt}<' in html and 'data-testid="retry"' in html
        html = client.post("/transfer", form | {"step": "send"}).content.decode()  # Try again: same key
    assert 'data-testid="attempts-used">3<' in html
    assert 'data-testid="retry"' not in html and 'data-testid="retries-exhausted"' in html
    assert not LedgerEntry.objects.exists()


def test_a_frozen_account_gets_a_disabled_form(sender, receiver, staff):
    account_set_status(account=sender, actor=staff, new_status=AccountStatus.FROZEN)
    client = client_for(sender.user)
    html = client.get("/transfer").content.decode()
    assert "<fieldset disabled>" in html and 'data-testid="not-active"' in html
    response = client.post("/transfer", {"to_account": str(receiver.pk), "amount": "5", "idempotency_key": "k"})
    assert response.status_code == 200 and not Transaction.objects.exists()


def test_bad_input_is_shown_on_the_form(sender):
    html = client_for(sender.user).post("/transfer", {"to_account": "nope", "amount": "1.001"}).content.decode()
    assert "24-character account ID" in html and "at most 2 decimals" in html


def test_history_and_dashboard_show_the_transfer(bootstrap, sender, receiver):
    fund(bootstrap, sender, 50_000)
    client = client_for(sender.user)
    send(client, {"to_account": str(receiver.pk), "amount": "100", "idempotency_key": "k-3"})
    history = client.get("/transactions").content.decode()
    assert "COMPLETED" in history and "Out" in history and "Aegis funding" in history
    dashboard = client.get("/dashboard").content.decode()
    assert "₹400.00" in dashboard and "<polyline" in dashboard and "badge-out" in dashboard
    live = htmx_client_for(sender.user).get("/dashboard").content.decode()  # the 15 s poll: all three together
    assert "<html" not in live and 'id="account-card"' in live and "<polyline" in live and "badge-out" in live
