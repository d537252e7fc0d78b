"""Two-factor sign-in in a real browser: staff enrolment, then signing in with a code (and a wrong one)."""

import re
import time

import pyotp
from playwright.sync_api import expect

from accounts.models import TotpDevice
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, make_user, totp_code


def _sign_in_with_password(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")


def test_staff_enrol_with_the_qr_page_then_sign_in_with_a_code(live_server, open_page, shot, staff):
    page = open_page()
    _sign_in_with_password(page, live_server.url, staff.email)
    # Not enrolled: the first page after the password is enrolment, and no staff page opens before it.
    page.wait_for_url(re.compile(r".*/account/two-factor/enrol$"))
    expect(page.locator("[data-testid=two-factor-qr] svg")).to_be_visible()
    shot(page, "enrol")
    page.goto(live_server.url + "/staff/users")
    page.wait_for_url(re.compile(r".*/account/two-factor/enrol$"))

    secret = page.locator("[data-testid=two-factor-secret]").inner_text().replace(" ", "")
    page.fill("#id_code", next(c for c in ("000000", "111111", "222222") if c not in _window(secret)))
    page.click("[data-testid=two-factor-confirm]")
    expect(page.locator(".field .error")).to_contain_text("That code is not right")
    page.fill("#id_code", totp_code(secret))
    page.click("[data-testid=two-factor-confirm]")
    expect(page.locator("[data-testid=recovery-code]")).to_have_count(10)
    shot(page, "recovery-codes")
    page.click("[data-testid=two-factor-done]")
    page.wait_for_url(re.compile(r".*/staff/users$"))
    expect(page.locator("h1")).to_contain_text("Users")
    assert TotpDevice.objects.get(user=staff).secret == secret

    # A new browser: the password, then the code page, which refuses a wrong code and takes the right one.
    later = open_page()
    _sign_in_with_password(later, live_server.url, staff.email)
    later.wait_for_url(re.compile(r".*/login/code(\?.*)?$"))
    wrong = next(c for c in ("000000", "111111", "222222") if c not in _window(secret))
    later.fill("#id_code", wrong)
    later.click("[data-testid=two-factor-submit]")
    expect(later.locator(".field .error")).to_have_text(
        "That code is not right. Enter the 6-digit code your authenticator app shows now."
    )
    shot(later, "wrong-code")
    later.goto(live_server.url + "/staff/transactions")  # still only the code page
    later.wait_for_url(re.compile(r".*/login/code\?next=/staff/transactions$"))
    later.fill("#id_code", totp_code(secret, after_step=TotpDevice.objects.get(user=staff).last_step))
    later.click("[data-testid=two-factor-submit]")
    later.wait_for_url(re.compile(r".*/staff/transactions$"))
    shot(later, "signed-in")


def test_a_customer_opts_in_from_the_security_settings(live_server, open_page, shot):
    customer = make_user(email="opt-in@example.com", name="Opal Optin")
    page = open_page()
    log_in(page, live_server.url, customer.email)  # no code yet
    page.click("[data-testid=nav-security]")
    expect(page.locator("[data-testid=two-factor-status]")).to_contain_text("Off")
    page.click("[data-testid=two-factor-enable]")
    secret = page.locator("[data-testid=two-factor-secret]").inner_text().replace(" ", "")
    page.fill("#id_code", totp_code(secret))
    page.click("[data-testid=two-factor-confirm]")
    expect(page.locator("[data-testid=recovery-code]")).to_have_count(10)
    page.click("[data-testid=two-factor-done]")
    page.wait_for_url(re.compile(r".*/dashboard$"))
    page.goto(live_server.url + "/account/two-factor")
    expect(page.locator("[data-testid=two-factor-status]")).to_contain_text("On since")
    shot(page, "settings-on")


def _window(secret: str) -> set[str]:
    totp = pyotp.TOTP(secret)
    return {totp.at(time.time() + offset) for offset in (-60, -30, 0, 30, 60)}
