"""Review, then send, in Chromium: at 1280 and 390 px, with JavaScript (HTMX swaps) and without
(plain posts), with screenshots in artifacts/. Money moves only on Send, and exactly once."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Account
from payees.services import payee_add
from tests.browser.conftest import DESKTOP, PHONE, log_in
from tests.factories import make_account, make_user
from transfers.models import Transaction
from transfers.services import system_fund


@pytest.fixture
def payer(bootstrap):
    account = make_account(user=make_user(email="payer@example.com", name="Asha Verma"), balance=0)
    system_fund(
        actor=bootstrap.system_user, to_account_id=str(account.pk), amount_paise=500_000, idempotency_key="fund-1"
    )
    return account


def balance(account) -> int:
    return Account.objects.get(pk=account.pk).balance


def fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def fill_and_review(page, to_account: str, rupees: str, note: str = "") -> str:
    key = page.locator("[data-testid=transfer-form] input[name=idempotency_key]").input_value()
    page.fill("#id_to_account", to_account)
    page.fill("#id_amount", rupees)
    page.fill("#id_note", note)
    page.click("[data-testid=review]")
    expect(page.locator("[data-testid=review-form]")).to_be_visible()
    return key


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_review_confirm_and_send_with_javascript(live_server, open_page, shot, payer, receiver, viewport):
    page = open_page(viewport=viewport)
    log_in(page, live_server.url, payer.user.email)
    page.goto(live_server.url + "/transfer")
    expect(page.locator("[data-testid=from-balance-amount]")).to_have_text("₹5,000.00")
    key = fill_and_review(page, str(receiver.pk), "1200.50", "Dinner")
    expect(page.locator("[data-testid=review-to]")).to_contain_text("Ravi R.")
    expect(page.locator("[data-testid=review-amount]")).to_have_text("₹1,200.50")
    expect(page.locator("[data-testid=review-balance-after]")).to_have_text("₹3,799.50")
    shot(page, "review")
    fits(page, viewport["width"])
    assert balance(receiver) == 0  # the review moved nothing

    page.click("[data-testid=send]")  # not ticked: the page says so and sends nothing
    expect(page.locator("[data-testid=review-error]")).to_contain_text("I am paying Ravi R.")
    assert balance(receiver) == 0
    page.check("[data-testid=confirm-name]")
    page.click("[data-testid=send]")
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-status", "COMPLETED")
    # The balance panel beside the form was swapped out of band: fresh without a reload.
    expect(page.locator("[data-testid=from-balance-amount]")).to_have_text("₹3,799.50")
    expect(page.locator("[data-testid=attempts]")).to_have_text("1 of 3")
    expect(page.locator("[data-testid=result-key]")).to_be_hidden()  # under "Details"
    new_key = page.locator("[data-testid=transfer-form] input[name=idempotency_key]").input_value()
    assert new_key != key and page.locator("#id_amount").input_value() == ""
    shot(page, "sent")
    fits(page, viewport["width"])
    assert balance(receiver) == 120_050


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_review_edit_and_send_without_javascript(live_server, open_page, shot, payer, receiver, viewport):
    page = open_page(javascript=False, viewport=viewport)
    log_in(page, live_server.url, payer.user.email)
    page.goto(live_server.url + "/transfer")
    key = fill_and_review(page, str(receiver.pk), "100", "Books")
    page.click("[data-testid=edit]")  # back, with the values kept
    expect(page.locator("#id_amount")).to_have_value("100")
    expect(page.locator("#id_note")).to_have_value("Books")
    page.fill("#id_amount", "150")
    page.click("[data-testid=review]")
    expect(page.locator("[data-testid=review-amount]")).to_have_text("₹150.00")
    page.check("[data-testid=confirm-name]")
    page.check("[data-testid=save-payee]")
    page.fill("[data-testid=nickname]", "Ravi books")
    shot(page, "review")
    fits(page, viewport["width"])
    page.click("[data-testid=send]")
    page.wait_for_url(re.compile(rf".*/transfer\?key={key}$"))
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-status", "COMPLETED")
    expect(page.locator("[data-testid=result-to]")).to_contain_text("Ravi books")
    expect(page.locator("[data-testid=from-balance-amount]")).to_have_text("₹4,850.00")
    shot(page, "sent")
    fits(page, viewport["width"])

    page.go_back()  # the review page again: pressing Send on it is a double press
    page.click("[data-testid=send]")
    expect(page.locator("[data-testid=replay]")).to_contain_text("nothing was sent again")
    shot(page, "replayed")
    assert balance(receiver) == 15_000
    assert Transaction.objects.filter(from_account_id=payer.pk).count() == 1


@pytest.mark.parametrize(
    ("javascript", "viewport"), [(True, PHONE), (False, DESKTOP)], ids=["js-phone", "nojs-desktop"]
)
def test_pay_a_saved_payee_from_the_payees_link(live_server, open_page, shot, payer, receiver, javascript, viewport):
    payee = payee_add(user=payer.user, account_id=str(receiver.pk), nickname="Landlord")
    page = open_page(javascript=javascript, viewport=viewport)
    log_in(page, live_server.url, payer.user.email)
    page.goto(f"{live_server.url}/transfer?payee={payee.pk}")
    expect(page.locator("[data-testid=payee-select]")).to_have_value(str(payee.pk))
    page.fill("#id_amount", "2500")
    page.click("[data-testid=review]")
    expect(page.locator("[data-testid=review-to]")).to_contain_text("Landlord (Ravi R.)")
    assert page.locator("[data-testid=confirm-name]").count() == 0  # confirmed when it was saved
    shot(page, "review")
    fits(page, viewport["width"])
    page.click("[data-testid=send]")
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-status", "COMPLETED")
    expect(page.locator("[data-testid=from-balance-amount]")).to_have_text("₹2,500.00")
    shot(page, "sent")
    assert balance(receiver) == 250_000


def test_a_failed_transfer_counts_attempts_and_tries_again(live_server, open_page, shot, receiver):
    poor = make_account(user=make_user(email="poor@example.com", name="Poor Payer"), balance=0)
    page = open_page()
    log_in(page, live_server.url, poor.user.email)
    page.goto(live_server.url + "/transfer")
    fill_and_review(page, str(receiver.pk), "5")
    page.check("[data-testid=confirm-name]")
    page.click("[data-testid=send]")
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-status", "FAILED")
    expect(page.locator("[data-testid=attempts]")).to_have_text("1 of 3")
    page.click("[data-testid=retry]")
    expect(page.locator("[data-testid=attempts]")).to_have_text("2 of 3")
    shot(page, "failed-twice")
    assert Transaction.objects.filter(from_account_id=poor.pk).count() == 1


def test_the_dashboard_refreshes_card_chart_and_activity_together(live_server, open_page, shot, bootstrap, payer):
    page = open_page()
    log_in(page, live_server.url, payer.user.email)
    expect(page.locator("[data-testid=balance]")).to_have_text("₹5,000.00")
    system_fund(
        actor=bootstrap.system_user, to_account_id=str(payer.pk), amount_paise=100_000, idempotency_key="fund-2"
    )
    # The 15 s poll, requested now instead of waited for: the same GET the hx-trigger makes.
    page.evaluate("htmx.ajax('GET', '/dashboard', {target: '#dashboard-live', swap: 'outerHTML'})")
    expect(page.locator("[data-testid=balance]")).to_have_text("₹6,000.00")
    expect(page.locator("[data-testid=recent-activity] li")).to_have_count(2)
    expect(page.locator(".chart-axis")).to_contain_text("high ₹6,000.00")
    expect(page.locator("#dashboard-live[hx-trigger='every 15s']")).to_have_count(1)  # still polling
    shot(page, "refreshed")
