"""Disputes in a real browser: a customer sends money, disputes it from the receipt, staff (the
disputes services, two staff members) reverse it, and the customer sees it resolved and the money
back; the form works with JavaScript off too."""

import re

from playwright.sync_api import expect

from accounts.models import Role
from disputes.models import Dispute
from disputes.services import reversal_approve, reversal_propose
from tests.browser.conftest import log_in, review_and_send
from tests.browser.test_csp import watch_csp
from tests.factories import make_account, make_user

DISPUTE_PAGE = re.compile(r".*/disputes/[0-9a-f]{24}$")


def _send_from_the_transfer_page(page, base_url: str, to_account, rupees: str) -> None:
    page.goto(base_url + "/transfer")
    page.fill("#id_to_account", str(to_account.pk))
    page.fill("#id_amount", rupees)
    page.fill("#id_note", "rent")
    review_and_send(page)
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-status", "COMPLETED")


def _dispute_from_the_receipt(page) -> str:
    page.click("[data-testid=result-receipt]")
    page.wait_for_url(re.compile(r".*/transactions/[0-9a-f]{24}$"))
    page.click("[data-testid=receipt-dispute]")
    page.wait_for_url(re.compile(r".*/disputes/new\?transaction=[0-9a-f]{24}$"))
    page.check("input[name=reason][value=WRONG_ACCOUNT]")
    page.fill("#id_note", "I typed one digit wrong in the account ID.")
    page.click("[data-testid=dispute-submit]")
    page.wait_for_url(DISPUTE_PAGE)
    return page.url.rsplit("/", 1)[1]


def test_a_customer_disputes_a_transfer_and_gets_the_money_back(live_server, open_page, shot, fund, receiver):
    payer = fund(make_account(user=make_user(email="payer@example.com", name="Priya Sharma")), 500_000)
    page = open_page()
    violations = watch_csp(page)
    log_in(page, live_server.url, payer.user.email)
    _send_from_the_transfer_page(page, live_server.url, receiver, "1200")

    dispute_id = _dispute_from_the_receipt(page)
    expect(page.locator("[data-testid=dispute-state]")).to_have_attribute("data-state", "OPEN")
    expect(page.locator("[data-testid=dispute-note]")).to_have_text("I typed one digit wrong in the account ID.")
    expect(page.locator(".toast-text")).to_contain_text("Dispute opened.")
    shot(page, "dispute-open")
    page.goto(live_server.url + "/transactions")
    page.click("[data-testid=nav-disputes]")
    page.wait_for_url(re.compile(r".*/disputes$"))
    expect(page.locator(f"tr[data-dispute='{dispute_id}'] [data-testid=dispute-state]")).to_have_attribute(
        "data-state", "OPEN"
    )
    shot(page, "dispute-list")

    dispute = Dispute.objects.get(pk=dispute_id)
    maker = make_user(email="maker@example.com", role=Role.ADMIN, name="Maker")
    checker = make_user(email="checker@example.com", role=Role.ADMIN, name="Checker")
    proposal = reversal_propose(
        staff=maker, transaction_id=str(dispute.transaction_id), amount_paise=120_000, dispute_id=dispute_id
    )
    done = reversal_approve(staff=checker, proposal_id=proposal["_id"], note="Wrong account: returned in full.")
    assert done["state"] == "EXECUTED"

    page.click(f"tr[data-dispute='{dispute_id}'] [data-testid=dispute-link]")
    page.wait_for_url(DISPUTE_PAGE)
    expect(page.locator("[data-testid=dispute-state]")).to_have_attribute("data-state", "RESOLVED_REVERSED")
    # The bank's answer to the customer; the checker's note stays with staff.
    expect(page.locator("[data-testid=dispute-answer]")).to_contain_text("₹1,200.00 was returned to your account.")
    expect(page.locator("[data-testid=dispute-reversal]")).to_have_count(1)
    expect(page.locator("[data-testid=dispute-returned]")).to_have_text("₹1,200.00")
    shot(page, "dispute-resolved")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "dispute-resolved-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    page.click("[data-testid=reversal-receipt]")
    expect(page.locator("[data-testid=receipt-amount]")).to_contain_text("+₹1,200.00")
    page.goto(live_server.url + "/dashboard")
    expect(page.locator("[data-testid=balance]")).to_have_text("₹5,000.00")
    assert violations == []


def test_the_dispute_form_works_without_javascript(live_server, open_page, shot, fund, receiver):
    payer = fund(make_account(user=make_user(email="nojs@example.com", name="Nora Script")), 100_000)
    page = open_page(javascript=False)
    log_in(page, live_server.url, payer.user.email)
    _send_from_the_transfer_page(page, live_server.url, receiver, "10")
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("[data-testid=result-receipt]")
    page.click("[data-testid=receipt-dispute]")
    page.wait_for_url(re.compile(r".*/disputes/new\?transaction=[0-9a-f]{24}$"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "dispute-form-phone")
    page.click("[data-testid=dispute-submit]")  # no reason chosen: the form again, with why
    expect(page.locator("[data-testid=error-reason]")).to_have_text("Choose what went wrong.")
    page.check("input[name=reason][value=NOT_RECEIVED]")
    page.click("[data-testid=dispute-submit]")
    page.wait_for_url(DISPUTE_PAGE)
    expect(page.locator("[data-testid=dispute-state]")).to_have_attribute("data-state", "OPEN")
    page.click("[data-testid=dispute-receipt-link]")  # the receipt now links to the open dispute
    expect(page.locator("[data-testid=receipt-dispute]")).to_have_count(0)
    page.click("[data-testid=receipt-dispute-open]")
    page.wait_for_url(DISPUTE_PAGE)
