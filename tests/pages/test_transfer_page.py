"""The transfer page: server-issued keys, retries with the same key, PRG, HTMX partials."""

import re

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from ledger.models import LedgerEntry
from tests.pages.conftest import client_for, htmx_client_for
from transfers.models import Transaction
from transfers.services import system_fund

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


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
    for _ in range(3):
        response = client.post("/transfer", form)
        assert response.status_code == 302
        assert response["Location"] == f"/transfer?key={key}"
    page = client.get(response["Location"]).content.decode()
    assert 'data-status="COMPLETED"' in page and key in page
    assert Account.objects.get(pk=receiver.pk).balance == 15_050
    assert Account.objects.get(pk=sender.pk).balance == 100_000 - 15_050
    assert Transaction.objects.filter(idempotency_key=key).count() == 1


def test_changing_the_amount_gets_a_new_key(bootstrap, sender, receiver):
    fund(bootstrap, sender, 100_000)
    client = htmx_client_for(sender.user)
    key = issued_key(client_for(sender.user))
    form = {"to_account": str(receiver.pk), "amount": "10", "idempotency_key": key}
    client.post("/transfer", form)
    response = client.post("/transfer", form | {"amount": "20"})
    html = response.content.decode()
    new_key = KEY.search(html).group(1)
    assert new_key != key and "new key" in html
    assert Account.objects.get(pk=receiver.pk).balance == 3_000


def test_htmx_gets_the_panel_partial_with_vary(sender, receiver):
    client = htmx_client_for(sender.user)
    response = client.post("/transfer", {"to_account": str(receiver.pk), "amount": "5", "idempotency_key": "k-1"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="transfer-panel"') and "<html" not in html
    assert "HX-Request" in response["Vary"]
    assert "Insufficient funds" in html and 'data-testid="retry"' in html
    assert "aegis:toasts" in response["HX-Trigger"]


def test_retry_with_the_same_key_until_exhausted(sender, receiver):
    client = htmx_client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "5", "idempotency_key": "k-2"}
    for attempt in (1, 2):
        html = client.post("/transfer", form).content.decode()
        assert f'data-testid="retry-count">{attempt}<' in html and 'data-testid="retry"' in html
    html = client.post("/transfer", form).content.decode()
    assert 'data-testid="retry-count">3<' in html
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
    client.post("/transfer", {"to_account": str(receiver.pk), "amount": "100", "idempotency_key": "k-3"})
    history = client.get("/transactions").content.decode()
    assert "COMPLETED" in history and "OUT" in history and "Aegis funding" in history
    dashboard = client.get("/dashboard").content.decode()
    assert "₹400.00" in dashboard and "<polyline" in dashboard and "badge-out" in dashboard
    card = htmx_client_for(sender.user).get("/dashboard").content.decode()
    assert card.lstrip().startswith('<section id="account-card"')
