"""The customer's dispute pages against the real server: the receipt's Dispute button, the form
(PRG, CSRF, refusals), the list and the dispute page, and what it shows once staff resolved it.

Transfers go through the real engine (transfers.services); staff steps are the disputes
services called directly, by two different staff members (maker and checker).
"""

import re

import pytest
from django.test import Client

from accounts.models import Account, Role
from disputes.models import Dispute, DisputeState
from disputes.services import dispute_open, dispute_reject, reversal_approve, reversal_propose
from tests.factories import make_account, make_user
from tests.pages.conftest import client_for
from transfers import exceptions as exc
from transfers.models import Transaction, TransactionKind
from transfers.services import transfer_create

DISPUTE_URL = re.compile(r"^/disputes/([0-9a-f]{24})$")
BUTTON = 'data-testid="receipt-dispute"'
OPEN_LINK = 'data-testid="receipt-dispute-open"'


@pytest.fixture
def payer(fund):
    return fund(make_account(user=make_user(name="Priya Payer")), 500_000)  # ₹5,000


@pytest.fixture
def payee():
    return make_account(user=make_user(name="Ravi Payee"))


def send(account, to, paise: int, key: str) -> dict:
    return transfer_create(
        actor=account.user,
        from_account_id=str(account.pk),
        to_account_id=str(to.pk),
        amount_paise=paise,
        idempotency_key=key,
        note=key,
    ).transaction


def failed_send(account, to, paise: int, key: str) -> dict:
    with pytest.raises(exc.TransferFailed) as refused:
        send(account, to, paise, key)
    return refused.value.transaction


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code)
    return response.content.decode()


def open_via_page(client, txn_id, reason="WRONG_ACCOUNT", note="meant Ravi Kumar, not Ravi Payee"):
    return client.post(f"/disputes/new?transaction={txn_id}", {"reason": reason, "note": note})


def test_the_dispute_button_shows_only_to_the_sender_of_a_recent_completed_transfer(settings, bank, payer, payee):
    sent = send(payer, payee, 10_000, "rent")
    failed = failed_send(payer, payee, 900_000, "too-much")
    funding = Transaction.objects.filter(to_account_id=payer.pk, kind=TransactionKind.SYSTEM_FUNDING).first()
    sender, receiver = client_for(payer.user), client_for(payee.user)

    receipt = page(sender, f"/transactions/{sent['_id']}")
    assert BUTTON in receipt and f'href="/disputes/new?transaction={sent["_id"]}"' in receipt
    assert BUTTON not in page(receiver, f"/transactions/{sent['_id']}")  # the receiver cannot dispute
    assert BUTTON not in page(sender, f"/transactions/{failed['_id']}")  # a failed one moved no money
    assert BUTTON not in page(sender, f"/transactions/{funding.pk}")  # a funding was not sent by them
    settings.AEGIS_DISPUTE_WINDOW_DAYS = 0  # the window has passed
    assert BUTTON not in page(sender, f"/transactions/{sent['_id']}")


def test_opening_a_dispute_redirects_to_its_page_which_shows_open(bank, payer, payee):
    sent = send(payer, payee, 10_000, "rent")
    client = client_for(payer.user)
    form = page(client, f"/disputes/new?transaction={sent['_id']}")
    assert "Sent to the wrong account" in form and "Fraud: I did not authorise it or was deceived" in form
    assert 'name="csrfmiddlewaretoken"' in form and "What happens next" in form and "₹100.00" in form

    response = open_via_page(client, sent["_id"])
    assert response.status_code == 302
    dispute_id = DISPUTE_URL.match(response["Location"]).group(1)
    dispute = Dispute.objects.get(pk=dispute_id)
    assert (dispute.state, dispute.reason, dispute.transaction_id) == (DisputeState.OPEN, "WRONG_ACCOUNT", sent["_id"])

    detail = page(client, response["Location"])
    assert 'data-state="OPEN"' in detail and "Sent to the wrong account" in detail
    assert "meant Ravi Kumar, not Ravi Payee" in detail and "Dispute opened." in detail  # the PRG notice
    assert f'href="/transactions/{sent["_id"]}"' in detail and 'data-testid="timeline-opened"' in detail
    receipt = page(client, f"/transactions/{sent['_id']}")
    assert BUTTON not in receipt and OPEN_LINK in receipt and f"/disputes/{dispute_id}" in receipt
    listing = page(client, "/disputes")
    assert f'data-dispute="{dispute_id}"' in listing and 'data-state="OPEN"' in listing
    assert 'data-testid="nav-disputes"' in listing


def test_the_list_is_newest_first_with_state_badges(bank, payer, payee, staff):
    first, second = send(payer, payee, 1_000, "one"), send(payer, payee, 2_000, "two")
    older = dispute_open(user=payer.user, transaction_id=first["_id"], reason="OTHER")
    newer = dispute_open(user=payer.user, transaction_id=second["_id"], reason="FRAUD")
    dispute_reject(staff=staff, dispute_id=older["_id"], answer="The payee confirmed the goods were delivered.")
    listing = page(client_for(payer.user), "/disputes")
    assert listing.index(str(newer["_id"])) < listing.index(str(older["_id"]))
    assert 'data-state="OPEN"' in listing and 'data-state="REJECTED"' in listing
    assert "No disputes" in page(client_for(payee.user), "/disputes")


def test_a_second_attempt_goes_to_the_open_dispute(bank, payer, payee):
    sent = send(payer, payee, 10_000, "rent")
    client = client_for(payer.user)
    first = open_via_page(client, sent["_id"])
    client.get(first["Location"])  # read the first notice
    again = open_via_page(client, sent["_id"], reason="FRAUD")
    assert again.status_code == 302 and again["Location"] == first["Location"]
    assert "already has an open dispute" in page(client, again["Location"])
    revisit = client.get(f"/disputes/new?transaction={sent['_id']}")  # the form itself sends them there too
    assert revisit.status_code == 302 and revisit["Location"] == first["Location"]
    assert Dispute.objects.filter(transaction_id=sent["_id"]).count() == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"reason": "CHANGED_MY_MIND", "note": ""}, "Choose one of the reasons listed."),
        ({"note": "no reason given"}, "Choose what went wrong."),
        ({"reason": "OTHER", "note": "x" * 501}, "at most 500 characters"),
    ],
)
def test_a_bad_form_answers_400_with_the_reason_and_opens_nothing(bank, payer, payee, form, message):
    sent = send(payer, payee, 10_000, "rent")
    response = client_for(payer.user).post(f"/disputes/new?transaction={sent['_id']}", form)
    assert response.status_code == 400
    assert message in response.content.decode() and 'data-testid="dispute-form"' in response.content.decode()
    assert Dispute.objects.count() == 0


def test_the_post_needs_the_csrf_token(bank, payer, payee):
    sent = send(payer, payee, 10_000, "rent")
    client = Client(enforce_csrf_checks=True)
    client.force_login(payer.user)
    response = client.post(f"/disputes/new?transaction={sent['_id']}", {"reason": "OTHER"})
    assert response.status_code == 403 and Dispute.objects.count() == 0


def test_a_failed_transfer_or_a_funding_is_refused_with_the_message(settings, bank, payer, payee):
    failed = failed_send(payer, payee, 900_000, "too-much")
    client = client_for(payer.user)
    refusal = "Only a completed transfer can be disputed; a failed one moved no money."
    shown = page(client, f"/disputes/new?transaction={failed['_id']}", status=422)
    assert refusal in shown and 'data-testid="dispute-form"' not in shown
    response = open_via_page(client, failed["_id"])
    assert response.status_code == 422 and refusal in response.content.decode()

    # A funding, by the only one who "sent" it: the system user.
    funding = Transaction.objects.filter(to_account_id=payer.pk, kind=TransactionKind.SYSTEM_FUNDING).first()
    system = client_for(bank.system_user)
    response = open_via_page(system, funding.pk)
    assert response.status_code == 422 and "Only a transfer you sent can be disputed." in response.content.decode()
    assert open_via_page(client, funding.pk).status_code == 404  # the customer received it: not theirs

    sent = send(payer, payee, 10_000, "rent")
    settings.AEGIS_DISPUTE_WINDOW_DAYS = 0
    response = open_via_page(client, sent["_id"])
    assert response.status_code == 422 and "within 0 days of completing" in response.content.decode()
    assert Dispute.objects.count() == 0


def test_someone_elses_dispute_or_transaction_is_not_found(bank, payer, payee):
    sent = send(payer, payee, 10_000, "rent")
    owner = client_for(payer.user)
    dispute_id = DISPUTE_URL.match(open_via_page(owner, sent["_id"])["Location"]).group(1)
    mine = send(payer, payee, 5_000, "mine")
    stranger = client_for(make_account(user=make_user(name="Mallory")).user)

    for client in (stranger, client_for(payee.user)):  # the receiver is a stranger to the dispute
        page(client, f"/disputes/{dispute_id}", status=404)
        assert dispute_id not in page(client, "/disputes")
    page(stranger, f"/disputes/new?transaction={mine['_id']}", status=404)
    assert open_via_page(stranger, mine["_id"]).status_code == 404
    page(client_for(payee.user), f"/disputes/new?transaction={mine['_id']}", status=404)  # received, not sent
    for bad in ("nope", "0" * 24, ""):
        page(owner, f"/disputes/{bad}" if bad else "/disputes/new", status=404)
    assert Dispute.objects.count() == 1


def test_after_staff_reverse_it_the_page_shows_resolved_the_answer_and_the_reversal(bank, payer, payee):
    sent = send(payer, payee, 25_050, "rent")
    client = client_for(payer.user)
    detail_url = open_via_page(client, sent["_id"], reason="NOT_RECEIVED", note="Ravi says nothing arrived")["Location"]
    dispute_id = DISPUTE_URL.match(detail_url).group(1)
    maker = make_user(role=Role.ADMIN, name="Maker")
    checker = make_user(role=Role.ADMIN, name="Checker")

    proposal = reversal_propose(
        staff=maker, transaction_id=str(sent["_id"]), amount_paise=25_050, dispute_id=dispute_id, note="Checked"
    )
    reviewing = page(client, detail_url)
    assert 'data-state="UNDER_REVIEW"' in reviewing and 'data-testid="timeline-review"' in reviewing
    assert 'data-testid="dispute-reversal"' not in reviewing
    done = reversal_approve(
        staff=checker, proposal_id=proposal["_id"], note="Sent to the wrong account; returned in full."
    )
    assert done["state"] == "EXECUTED"

    resolved = page(client, detail_url)
    assert 'data-state="RESOLVED_REVERSED"' in resolved
    assert "Resolved: the whole amount was returned to your account." in resolved
    # The customer reads the bank's answer, never the checker's internal note.
    assert 'data-testid="dispute-answer"' in resolved and "₹250.50 was returned to your account." in resolved
    assert "Sent to the wrong account; returned in full." not in resolved
    assert resolved.count('data-testid="dispute-reversal"') == 1 and "+₹250.50" in resolved
    assert f'href="/transactions/{done["reversal_id"]}"' in resolved
    assert 'data-testid="timeline-reversal"' in resolved and 'data-testid="timeline-resolved"' in resolved
    assert Account.objects.get(pk=payer.pk).balance == 500_000  # the money is back
    assert 'data-state="RESOLVED_REVERSED"' in page(client, "/disputes")

    receipt = page(client, f"/transactions/{sent['_id']}")
    assert OPEN_LINK not in receipt  # closed
    assert 'data-testid="receipt-status"' in page(client, f"/transactions/{done['reversal_id']}")
    # The receiver paid the reversal: it is theirs "sent", and not disputable.
    response = open_via_page(client_for(payee.user), done["reversal_id"])
    assert response.status_code == 422 and "Only a transfer you sent can be disputed." in response.content.decode()
