"""The transfer page: pay a payee or an account id, review (no money moves), then send once.

Django's test client against the real embedded server. The review must never move money; the
send keeps run_transfer's idempotency rules (a key renewed for a changed intent, retries keep the
key); a second press of Send only replays and says so.
"""

import re

import pytest

from accounts.models import Account
from ledger.models import LedgerEntry
from payees.models import Payee
from payees.services import payee_add
from tests.factories import make_account, make_user
from tests.pages.conftest import client_for, htmx_client_for
from transfers.models import Transaction
from transfers.services import system_fund

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
TOKEN = re.compile(r'name="review_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"


@pytest.fixture
def bootstrap(tmp_path):
    from accounts.services import system_bootstrap

    return system_bootstrap(credentials_path=tmp_path / "credentials.json")


@pytest.fixture
def sender(bootstrap):
    account = make_account(user=make_user(name="Asha Verma"), balance=0)
    system_fund(actor=bootstrap.system_user, to_account_id=str(account.pk), amount_paise=100_000, idempotency_key="f1")
    return Account.objects.get(pk=account.pk)


@pytest.fixture
def receiver():
    return make_account(user=make_user(name="Ravi Kumar"))


def issued_key(client) -> str:
    return KEY.search(client.get("/transfer").content.decode()).group(1)


def review(client, **fields):
    return client.post("/transfer", {"step": "review", **fields})


def moved(account) -> int:
    return Account.objects.get(pk=account.pk).balance


def sent_by(account):
    return Transaction.objects.filter(from_account_id=account.pk)


def test_review_moves_no_money_and_shows_whom_amount_and_balance_after(sender, receiver):
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "250.50", "note": "rent", "idempotency_key": issued_key(client)}
    html = review(client, **form).content.decode()
    assert 'data-testid="review-form"' in html
    assert "Ravi K." in html and "Ravi Kumar" not in html  # the masked registered name only
    assert "₹250.50" in html and "rent" in html
    assert re.search(r'data-testid="review-balance-after">₹749.50<', html)
    assert "I am paying <strong>Ravi K.</strong>" in html
    assert not sent_by(sender).exists() and moved(receiver) == 0 and moved(sender) == 100_000


def test_a_post_without_a_step_is_only_a_review(sender, receiver):
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "5", "idempotency_key": issued_key(client)}
    html = client.post("/transfer", form).content.decode()
    assert 'data-testid="review-form"' in html and not sent_by(sender).exists()


def test_a_non_payee_must_be_confirmed_before_sending(sender, receiver):
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "10", "idempotency_key": issued_key(client)}
    token = TOKEN.search(review(client, **form).content.decode()).group(1)
    response = client.post("/transfer", form | {"step": "send", "review_token": token})
    assert response.status_code == 400
    assert "Tick “I am paying Ravi K.”" in response.content.decode()
    assert not sent_by(sender).exists()
    response = client.post("/transfer", form | {"step": "send", "review_token": token, "confirm_name": "on"})
    assert response.status_code == 302 and moved(receiver) == 1_000


def test_a_send_without_a_valid_review_token_goes_back_to_review(sender, receiver):
    """A tampered account id cannot ride on another account's confirmed name."""
    other = make_account(user=make_user(name="Mallory Fraud"))
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "10", "idempotency_key": issued_key(client)}
    token = TOKEN.search(review(client, **form).content.decode()).group(1)
    for bad in (token, "forged", ""):
        posted = form | {"to_account": str(other.pk), "step": "send", "review_token": bad, "confirm_name": "on"}
        html = client.post("/transfer", posted).content.decode()
        assert 'data-testid="review-form"' in html and "Mallory F." in html
    assert not sent_by(sender).exists() and moved(other) == 0


def test_a_saved_payee_needs_no_confirmation_and_is_preselected(sender, receiver):
    payee = payee_add(user=sender.user, account_id=str(receiver.pk), nickname="Landlord")
    client = client_for(sender.user)
    page = client.get(f"/transfer?payee={payee.pk}").content.decode()
    assert re.search(rf'<option value="{payee.pk}" selected>Landlord \(Ravi K\.\)</option>', page)
    form = {"payee": str(payee.pk), "amount": "20", "idempotency_key": KEY.search(page).group(1)}
    html = review(client, **form).content.decode()
    assert "Landlord (Ravi K.)" in html and 'data-testid="confirm-name"' not in html
    response = client.post("/transfer", form | {"step": "send"})
    assert response.status_code == 302 and moved(receiver) == 2_000


def test_another_customers_payee_is_refused(sender, receiver):
    stranger = make_account(user=make_user(name="Someone Else"))
    theirs = payee_add(user=stranger.user, account_id=str(receiver.pk), nickname="Theirs")
    client = client_for(sender.user)
    page = client.get(f"/transfer?payee={theirs.pk}").content.decode()
    assert "selected>" not in page  # not preselected, not listed
    response = review(client, payee=str(theirs.pk), amount="5", idempotency_key="k-x")
    assert response.status_code == 400 and "no longer in your list" in response.content.decode()


def test_also_save_as_payee(sender, receiver):
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "10", "idempotency_key": issued_key(client)}
    token = TOKEN.search(review(client, **form).content.decode()).group(1)
    sent = form | {"step": "send", "review_token": token, "confirm_name": "on", "save_payee": "on"}
    html = client.post("/transfer", sent | {"nickname": "   "}).content.decode()
    assert "Give this payee a nickname" in html and not sent_by(sender).exists()
    client.post("/transfer", sent | {"nickname": "Ravi rent"})
    payee = Payee.objects.get(owner=sender.user)
    assert (payee.nickname, payee.holder_name, payee.account_id) == ("Ravi rent", "Ravi K.", receiver.pk)


def test_edit_goes_back_with_the_values_and_the_key(sender, receiver):
    client = client_for(sender.user)
    key = issued_key(client)
    form = {"to_account": str(receiver.pk), "amount": "12.34", "note": "books", "idempotency_key": key}
    html = client.post("/transfer", form | {"step": "edit"}).content.decode()
    assert 'data-testid="transfer-form"' in html and 'data-testid="review-form"' not in html
    assert f'value="{receiver.pk}"' in html and 'value="12.34"' in html and 'value="books"' in html
    assert KEY.search(html).group(1) == key and not sent_by(sender).exists()


def send_confirmed(client, form):
    token = TOKEN.search(review(client, **form).content.decode()).group(1)
    return client.post("/transfer", form | {"step": "send", "review_token": token, "confirm_name": "on"})


def test_a_second_press_only_replays_and_says_so(sender, receiver):
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "100", "idempotency_key": issued_key(client)}
    first = send_confirmed(client, form)
    client.get(first["Location"])  # the first press's result (and its toast)
    again = client.post("/transfer", form | {"step": "send", "confirm_name": "on", "review_token": "x"})
    assert "replayed=1" in again["Location"]
    html = client.get(again["Location"]).content.decode()
    assert re.search(r"Already sent at \d\d:\d\d — nothing was sent again\.", html)
    assert "Transfer completed." not in html
    # Resubmitting the old form (back button) to the review step is a replay too, not a new review.
    html = review(client, **form).content.decode()
    assert 'data-testid="replay"' in html and 'data-testid="review-form"' not in html
    assert moved(receiver) == 10_000 and sent_by(sender).count() == 1


def test_htmx_replay_says_already_sent(sender, receiver):
    client = htmx_client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "100", "idempotency_key": "k-replay"}
    send_confirmed(client, form)
    response = client.post("/transfer", form | {"step": "send", "confirm_name": "on"})
    html = response.content.decode()
    assert 'data-testid="replay"' in html and "nothing was sent again" in response["HX-Trigger"]
    assert moved(receiver) == 10_000


def test_after_a_completed_transfer_the_form_has_a_new_key_and_the_balance_updates(sender, receiver):
    client = htmx_client_for(sender.user)
    key = issued_key(client_for(sender.user))
    form = {"to_account": str(receiver.pk), "amount": "100", "idempotency_key": key}
    html = send_confirmed(client, form).content.decode()
    assert 'data-status="COMPLETED"' in html
    new_key = KEY.search(html.split('data-testid="transfer-form"')[1]).group(1)
    assert new_key != key and len(new_key) == 36
    # The "From your account" panel comes along out of band, with the new balance.
    assert re.search(r'id="from-balance"[^>]*hx-swap-oob="true"', html)
    assert re.search(r'data-testid="from-balance-amount">₹900.00<', html)
    # Without JS: the result page after the redirect also offers a fresh form.
    plain = client_for(sender.user)
    page = plain.get(f"/transfer?key={key}").content.decode()
    assert (
        'data-status="COMPLETED"' in page and KEY.search(page.split('data-testid="transfer-form"')[1]).group(1) != key
    )


def test_a_changed_amount_at_review_gets_a_new_key(sender, receiver):
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "10", "idempotency_key": "k-change"}
    send_confirmed(client, form)
    html = review(client, **form | {"amount": "11"}).content.decode()
    key = KEY.search(html).group(1)
    assert key != "k-change" and "new transfer" in html
    token = TOKEN.search(html).group(1)
    client.post(
        "/transfer",
        form | {"amount": "11", "idempotency_key": key, "step": "send", "review_token": token, "confirm_name": "on"},
    )
    assert moved(receiver) == 2_100


def test_a_changed_amount_at_send_still_gets_a_new_key(sender, receiver):
    """run_transfer's rule holds even if the send step carries a key used for another amount."""
    client = htmx_client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "10", "idempotency_key": "k-send"}
    send_confirmed(client, form)
    html = send_confirmed(client, form | {"amount": "20"}).content.decode()
    assert 'data-status="COMPLETED"' in html and moved(receiver) == 3_000
    assert Transaction.objects.filter(idempotency_key="k-send").count() == 1


def test_attempts_are_counted_as_the_engine_counts_them(bootstrap, receiver):
    poor = make_account(user=make_user(name="Poor Payer"), balance=0)
    client = htmx_client_for(poor.user)
    form = {"to_account": str(receiver.pk), "amount": "5", "idempotency_key": "k-att"}
    html = send_confirmed(client, form).content.decode()
    assert 'data-testid="attempts-used">1<' in html and "1</span> of 3" in html
    assert "Retries used" not in html and 'data-testid="retry"' in html
    retry = form | {"step": "send"}  # the retry button: same key, confirmed when first sent
    html = client.post("/transfer", retry).content.decode()
    assert 'data-testid="attempts-used">2<' in html
    system_fund(actor=bootstrap.system_user, to_account_id=str(poor.pk), amount_paise=1_000, idempotency_key="f2")
    html = client.post("/transfer", retry).content.decode()
    assert 'data-status="COMPLETED"' in html and 'data-testid="attempts-used">3<' in html
    assert moved(receiver) == 500


def test_attempts_run_out_after_three(receiver):
    poor = make_account(user=make_user(name="Poor Payer"), balance=0)
    client = htmx_client_for(poor.user)
    form = {"to_account": str(receiver.pk), "amount": "5", "idempotency_key": "k-out"}
    send_confirmed(client, form)
    for _ in range(2):
        html = client.post("/transfer", form | {"step": "send"}).content.decode()
    assert 'data-testid="attempts-used">3<' in html and 'data-testid="retries-exhausted"' in html
    assert 'data-testid="retry"' not in html and not LedgerEntry.objects.filter(account_id=poor.pk).exists()


def test_the_key_is_under_details(sender, receiver):
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "1", "idempotency_key": "k-det"}
    html = client.get(send_confirmed(client, form)["Location"]).content.decode()
    details = html.split('<details class="flow-details"')[1].split("</details>")[0]
    assert "k-det" in details and "Idempotency key" in details
    assert "Idempotency key" not in html.split('<details class="flow-details"')[0]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"to_account": "nope", "amount": "1"}, "24-character account ID"),
        ({"to_account": "", "amount": "1"}, "Choose a payee or enter the account ID"),
        ({"amount": "1.001"}, "at most 2 decimals"),
        ({"amount": "-5"}, "Amount"),
        ({"amount": "10000.01"}, "10,000.00"),
        ({"to_account": "65a000000000000000000000", "amount": "1"}, "No Aegis account has that ID"),
    ],
)
def test_bad_input_is_a_clear_400_and_sends_nothing(sender, receiver, fields, message):
    client = client_for(sender.user)
    posted = {"to_account": str(receiver.pk), "idempotency_key": "k-bad"} | fields
    for step in ("review", "send"):
        response = client.post("/transfer", posted | {"step": step, "confirm_name": "on"})
        assert response.status_code == 400 and message in response.content.decode()
    assert not Transaction.objects.filter(idempotency_key="k-bad").exists()


def test_paying_your_own_account_is_refused(sender):
    response = review(client_for(sender.user), to_account=str(sender.pk), amount="1", idempotency_key="k-own")
    assert response.status_code == 400 and "your own account" in response.content.decode()


def test_the_name_look_up_limit_is_a_clear_message(settings, sender, receiver):
    settings.AEGIS_RATELIMIT_NAME_LOOKUP = "2/1h"
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "1", "idempotency_key": "k-lim"}
    for _ in range(2):
        assert review(client, **form).status_code == 200
    response = review(client, **form)
    assert response.status_code == 400 and "Too many account look-ups" in response.content.decode()


def test_the_dashboard_refreshes_card_chart_and_activity_together(sender, receiver):
    card = htmx_client_for(sender.user).get("/dashboard").content.decode()
    assert card.lstrip().startswith('<div id="dashboard-live"') and 'hx-trigger="every 15s"' in card
    assert (
        'data-testid="balance">₹1,000.00<' in card and "<polyline" in card and 'data-testid="recent-activity"' in card
    )
    page = client_for(sender.user).get("/dashboard").content.decode()
    assert page.count('hx-trigger="every 15s"') == 1  # one poll for the three, not three polls


def test_an_account_id_in_capitals_is_the_same_recipient_so_a_second_press_only_replays(sender, receiver):
    client = client_for(sender.user)
    form = {"to_account": str(receiver.pk).upper(), "amount": "10", "idempotency_key": issued_key(client)}
    first = send_confirmed(client, form)
    assert first.status_code == 302 and moved(receiver) == 1_000
    again = client.post("/transfer", form | {"step": "send", "confirm_name": "on", "review_token": "x"})
    assert "replayed=1" in again["Location"]
    html = review(client, **form).content.decode()  # back to the form, Review again: still the same transfer
    assert 'data-testid="replay"' in html
    assert moved(receiver) == 1_000 and sent_by(sender).count() == 1


def test_a_review_is_good_only_for_its_amount_and_its_customer(sender, receiver):
    client = client_for(sender.user)
    small = {"to_account": str(receiver.pk), "amount": "1", "idempotency_key": issued_key(client)}
    token = TOKEN.search(review(client, **small).content.decode()).group(1)
    bigger = small | {"amount": "900", "step": "send", "review_token": token, "confirm_name": "on"}
    html = client.post("/transfer", bigger).content.decode()
    assert 'data-testid="review-form"' in html and "₹900.00" in html  # reviewed again, nothing sent
    other = make_account(user=make_user(name="Meera Nair"))
    system_fund(
        actor=Account.objects.get(user__is_system=True).user,
        to_account_id=str(other.pk),
        amount_paise=50_000,
        idempotency_key="f2",
    )
    stolen = small | {"step": "send", "review_token": token, "confirm_name": "on"}
    html = client_for(other.user).post("/transfer", stolen).content.decode()
    assert 'data-testid="review-form"' in html
    assert not sent_by(sender).exists() and not sent_by(other).exists() and moved(receiver) == 0
