"""The staff console in Chromium at 1280 and 390 px (issue 19): the transaction list names sender
and receiver, filters by date and amount (with and without JavaScript, bad input refused on the
page), the user page's panels, a fresh login funding without a second password prompt, and no
staff page wider than a 390 px phone."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, log_in
from tests.factories import make_account, make_user
from transfers.services import system_fund, transfer_create

STAFF_PAGES = (
    "/staff/users",
    "/staff/transactions",
    "/staff/disputes",
    "/staff/reversals",
    "/staff/stats",
    "/staff/fund",
    "/staff/events",
)


@pytest.fixture
def people(bootstrap):
    payer = make_account(user=make_user(email="priya@example.com", name="Priya Sharma"), balance=0)
    payee = make_account(user=make_user(email="ravi@example.com", name="Ravi Kumar"))
    system_fund(actor=bootstrap.system_user, to_account_id=str(payer.pk), amount_paise=500_000, idempotency_key="f1")
    for i, paise in enumerate((12_345, 250_000, 9_900)):
        transfer_create(
            actor=payer.user,
            from_account_id=str(payer.pk),
            to_account_id=str(payee.pk),
            amount_paise=paise,
            idempotency_key=f"t{i}",
        )
    return payer, payee


@pytest.mark.parametrize(
    ("javascript", "viewport", "name"),
    [(True, DESKTOP, "desktop-js"), (False, PHONE, "phone-nojs"), (True, PHONE, "phone-js")],
)
def test_staff_filter_transactions_by_amount_and_see_names(
    live_server, open_page, shot, staff, people, javascript, viewport, name
):
    payer, payee = people
    page = open_page(javascript=javascript, viewport=viewport)
    log_in(page, live_server.url, staff.email)
    page.goto(live_server.url + "/staff/transactions")
    table = page.locator("[data-testid=txn-table]")
    expect(table).to_contain_text("Priya Sharma")
    expect(table).to_contain_text("ravi@example.com")
    expect(table).to_contain_text("Aegis funding")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(page, f"staff-transactions-{name}")

    page.fill("#id_min_amount", "100")
    page.fill("#id_max_amount", "200")
    page.click("[data-testid=txn-filters] button[type=submit]")
    rows = page.locator("[data-testid=txn-row]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("₹123.45")
    assert "min_amount=100" in page.url
    shot(page, f"staff-transactions-amount-{name}")

    page.fill("#id_min_amount", "10.001")
    page.click("[data-testid=txn-filters] button[type=submit]")
    expect(page.locator("[data-testid=filter-errors]")).to_contain_text("Min amount must be rupees")
    expect(page.locator("[data-testid=txn-row]")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(page, f"staff-transactions-bad-input-{name}")


def test_user_page_and_fresh_login_funding(live_server, open_page, shot, staff, people):
    payer, _ = people
    page = open_page(viewport=PHONE)
    log_in(page, live_server.url, staff.email)
    page.goto(f"{live_server.url}/staff/users/{payer.user.pk}")
    for testid in ("user-facts", "account-facts", "user-entries", "user-disputes", "user-audit", "user-statement"):
        expect(page.locator(f"[data-testid={testid}]")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "staff-user-phone")

    # Signed in seconds ago: the funding form does not ask for the password again.
    page.goto(f"{live_server.url}/staff/fund?account={payer.pk}")
    expect(page.locator("[data-testid=reauth-password]")).to_have_count(0)
    page.fill("#id_amount", "50")
    page.locator("form button[type=submit]").last.click()
    expect(page.locator("body")).to_contain_text("Account funded")
    shot(page, "staff-fund-after-login-phone")


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_every_staff_page_fits_the_viewport(live_server, open_page, shot, staff, people, viewport, name):
    payer, _ = people
    page = open_page(viewport=viewport)
    log_in(page, live_server.url, staff.email)
    for path in (*STAFF_PAGES, f"/staff/users/{payer.user.pk}"):
        page.goto(live_server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], (path, width)
    page.goto(live_server.url + "/staff/users")
    shot(page, f"staff-users-{name}")
    expect(page.locator(".staff-nav a").first).to_be_visible()
    assert re.search(r"/staff/users$", page.url)
