"""Customer flows in a real browser (JavaScript on, and off)."""

import re

from playwright.sync_api import expect

from accounts.models import Account
from tests.browser.conftest import log_in, review_and_send
from tests.factories import PASSWORD, make_account, make_user
from transfers.models import Transaction
from transfers.services import system_fund


def staff_funds(page, base_url, account_id: str, rupees: str) -> None:
    page.goto(f"{base_url}/staff/fund")
    page.fill("#id_to_account", account_id)
    page.fill("#id_amount", rupees)
    if page.locator("[data-testid=reauth-password]").count():  # asked once per AEGIS_REAUTH_SECONDS
        page.fill("[data-testid=reauth-password]", PASSWORD)
    page.click("[data-testid=fund-form] button[type=submit]")
    expect(page.locator("[data-testid=fund-result]")).to_have_attribute("data-status", "COMPLETED")


def test_register_open_account_get_funded_and_transfer(live_server, open_page, shot, bootstrap, staff, receiver):
    url = live_server.url
    user = open_page()
    user.goto(url + "/")
    shot(user, "landing")
    user.click("text=Open an account")
    user.fill("#id_name", "Asha Rao")
    user.fill("#id_email", "asha@example.com")
    user.fill("#id_password", "a long and unusual passphrase")
    shot(user, "register")
    user.click("form[action='/register'] button[type=submit]")
    user.wait_for_url(re.compile(r".*/dashboard$"))
    user.click("text=Create account")
    expect(user.locator("[data-testid=balance]")).to_have_text("₹0.00")
    account_id = user.locator("[data-testid=account-id]").inner_text().strip()

    admin = open_page()
    log_in(admin, url, staff.email)
    staff_funds(admin, url, account_id, "5000")
    shot(admin, "staff-fund")

    user.goto(url + "/transfer")
    key = user.locator("input[name=idempotency_key]").input_value()
    user.fill("#id_to_account", str(receiver.pk))
    user.fill("#id_amount", "1200.50")
    user.fill("#id_note", "Dinner")
    review_and_send(user)
    result = user.locator("[data-testid=result]")
    expect(result).to_have_attribute("data-status", "COMPLETED")
    expect(user.locator("[data-testid=result-key]")).to_have_text(key)
    shot(user, "transfer-completed")

    user.goto(url + "/dashboard")
    expect(user.locator("[data-testid=balance]")).to_have_text("₹3,799.50")
    activity = user.locator("[data-testid=recent-activity] li").first
    expect(activity).to_contain_text(re.compile("out", re.IGNORECASE))
    expect(activity).to_contain_text("COMPLETED")
    expect(activity).to_contain_text("Dinner")
    shot(user, "dashboard")
    user.set_viewport_size({"width": 390, "height": 844})
    shot(user, "dashboard-mobile")
    user.set_viewport_size({"width": 1280, "height": 860})
    user.goto(url + "/transactions")
    expect(user.locator("[data-testid=history-table] tbody tr")).to_have_count(2)
    shot(user, "history")
    assert Account.objects.get(pk=receiver.pk).balance == 120_050


def test_insufficient_funds_then_retry_until_exhausted(live_server, open_page, shot, receiver):
    owner = make_account(user=make_user(email="poor@example.com", name="Pat Poor"))
    page = open_page()
    log_in(page, live_server.url, owner.user.email)
    page.goto(live_server.url + "/transfer")
    key = page.locator("input[name=idempotency_key]").input_value()
    page.fill("#id_to_account", str(receiver.pk))
    page.fill("#id_amount", "100")
    review_and_send(page)
    result = page.locator("[data-testid=result]")
    expect(result).to_have_attribute("data-status", "FAILED")
    expect(page.locator("[data-testid=failure-reason]")).to_contain_text("Insufficient funds")
    expect(page.locator("[data-testid=attempts-used]")).to_have_text("1")
    shot(page, "failed")
    for attempt in ("2", "3"):
        page.click("[data-testid=retry]")
        expect(page.locator("[data-testid=attempts-used]")).to_have_text(attempt)
        expect(page.locator("[data-testid=result-key]")).to_have_text(key)
    expect(page.locator("[data-testid=retries-exhausted]")).to_be_visible()
    expect(page.locator("[data-testid=retry]")).to_have_count(0)
    shot(page, "retries-exhausted")
    txn = Transaction.objects.get(idempotency_key=key)
    assert (txn.status, txn.retry_count) == ("FAILED", 3)


def test_transfer_works_without_javascript(live_server, open_page, shot, bootstrap, receiver):
    owner = make_account(user=make_user(email="nojs@example.com", name="No Script"))
    system_fund(actor=bootstrap.system_user, to_account_id=str(owner.pk), amount_paise=100_000, idempotency_key="nojs")
    page = open_page(javascript=False)
    log_in(page, live_server.url, owner.user.email, PASSWORD)
    page.goto(live_server.url + "/transfer")
    key = page.locator("input[name=idempotency_key]").input_value()
    page.fill("#id_to_account", str(receiver.pk))
    page.fill("#id_amount", "250")
    review_and_send(page)
    page.wait_for_url(re.compile(rf".*/transfer\?key={key}$"))
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-status", "COMPLETED")
    page.reload()  # a reload re-renders the result; it never re-posts the transfer
    expect(page.locator(".toast")).to_have_count(0)
    shot(page, "completed-nojs")
    # A second intent that cannot be paid: FAILED, then a retry by plain form post.
    page.goto(live_server.url + "/transfer")
    page.fill("#id_to_account", str(receiver.pk))
    page.fill("#id_amount", "9999")
    review_and_send(page)
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-status", "FAILED")
    page.click("[data-testid=retry]")
    expect(page.locator("[data-testid=attempts-used]")).to_have_text("2")
    shot(page, "retry-nojs")
    page.goto(live_server.url + "/dashboard")
    expect(page.locator("[data-testid=balance]")).to_have_text("₹750.00")
    assert Account.objects.get(pk=receiver.pk).balance == 25_000
