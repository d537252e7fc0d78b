"""The Payees page in a real browser at 1280 and 390 px, with and without JavaScript: add a payee
(the page shows whose account it is and asks to confirm; "Change" keeps what was typed), rename it,
remove it after a confirmation, and a refusal shown on the page. With JavaScript each step swaps
in place (the address stays /payees); without it each is a plain post. No page is wider than the
viewport; screenshots in artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from payees.models import Payee
from tests.browser.conftest import DESKTOP, PHONE, log_in
from tests.browser.test_csp import watch_csp
from tests.factories import make_account, make_user

CASES = [
    pytest.param(True, DESKTOP, id="js-desktop"),
    pytest.param(True, PHONE, id="js-phone"),
    pytest.param(False, DESKTOP, id="nojs-desktop"),
    pytest.param(False, PHONE, id="nojs-phone"),
]


def fits(page, viewport: dict) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{page.url} is {width}px wide in a {viewport['width']}px viewport"


def expect_address(page, javascript: bool, without_js: str) -> None:
    """With htmx the page swaps in place (still /payees); without it the form's own address shows."""
    expected = r".*/payees$" if javascript else without_js
    expect(page).to_have_url(re.compile(expected))


@pytest.mark.parametrize(("javascript", "viewport"), CASES)
def test_add_rename_and_remove_a_payee(live_server, open_page, shot, javascript, viewport):
    payer = make_account(user=make_user(email="payer@example.com", name="Priya Sharma"))
    ravi = make_account(user=make_user(email="ravi@example.com", name="Ravi Kumar"))
    page = open_page(javascript=javascript, viewport=viewport)
    page.set_default_timeout(30_000)  # the first request of a live server on a busy machine takes seconds
    violations = watch_csp(page)
    log_in(page, live_server.url, payer.user.email)

    page.click("[data-testid=nav-payees]")
    page.wait_for_url(re.compile(r".*/payees$"))
    expect(page.locator("[data-testid=payees-empty]")).to_contain_text("No payees yet.")
    fits(page, viewport)
    shot(page, "empty")

    # A refusal first: an id that belongs to no one, said on the page, what was typed kept.
    page.fill("[data-testid=add-account_id]", "0" * 24)
    page.fill("[data-testid=add-nickname]", "Landlord")
    page.click("[data-testid=add-check]")
    expect(page.locator("[data-testid=error-account_id]")).to_contain_text("No Aegis account has that ID")
    expect(page.locator("[data-testid=add-nickname]")).to_have_value("Landlord")

    page.fill("[data-testid=add-account_id]", str(ravi.pk))
    page.click("[data-testid=add-check]")
    expect(page.locator("[data-testid=confirm-holder]")).to_have_text("Ravi K.")
    expect(page.locator("[data-testid=payee-confirm]")).to_contain_text("This account is held by")
    expect_address(page, javascript, r".*/payees/new$")
    assert Payee.objects.count() == 0  # nothing saved before the customer confirms
    fits(page, viewport)
    shot(page, "confirm")

    page.click("[data-testid=confirm-edit]")  # back, with the values kept
    expect(page.locator("[data-testid=add-account_id]")).to_have_value(str(ravi.pk))
    expect(page.locator("[data-testid=add-nickname]")).to_have_value("Landlord")
    page.click("[data-testid=add-check]")
    page.click("[data-testid=confirm-save]")
    row = page.locator("[data-testid=payee-row]")
    expect(row).to_have_count(1)
    expect(row.locator("[data-testid=payee-nickname]")).to_have_text("Landlord")
    expect(row.locator("[data-testid=payee-holder]")).to_have_text("Ravi K.")
    expect(page.locator(".toast-text").first).to_contain_text("Saved “Landlord” (Ravi K.) as a payee.")
    expect_address(page, javascript, r".*/payees$")  # without JS: POST -> redirect -> GET
    payee = Payee.objects.get(owner=payer.user)
    expect(row.locator("[data-testid=payee-pay]")).to_have_attribute("href", f"/transfer?payee={payee.pk}")
    fits(page, viewport)
    shot(page, "saved")

    row.locator("[data-testid=payee-rename-link]").click()
    expect(page.locator("[data-testid=rename-nickname]")).to_have_value("Landlord")
    page.fill("[data-testid=rename-nickname]", " ")
    page.click("[data-testid=rename-save]")
    expect(page.locator("[data-testid=rename-error]")).to_contain_text("Give this payee a nickname")
    page.fill("[data-testid=rename-nickname]", "Rent")
    page.click("[data-testid=rename-save]")
    expect(row.locator("[data-testid=payee-nickname]")).to_have_text("Rent")
    expect_address(page, javascript, r".*/payees$")

    row.locator("[data-testid=payee-remove-link]").click()
    expect(page.locator("[data-testid=payee-remove]")).to_contain_text("Remove “Rent”?")
    expect_address(page, javascript, rf".*/payees/{payee.pk}/remove$")
    fits(page, viewport)
    shot(page, "remove-confirm")
    page.click("[data-testid=remove-cancel]")  # keep it: nothing changes
    expect(row).to_have_count(1)
    row.locator("[data-testid=payee-remove-link]").click()
    page.click("[data-testid=remove-confirm]")
    expect(page.locator("[data-testid=payees-empty]")).to_be_visible()
    expect(page.locator("[data-testid=payee-row]")).to_have_count(0)
    assert not Payee.objects.filter(pk=payee.pk).exists()
    assert violations == []
