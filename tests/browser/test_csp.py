"""The Content-Security-Policy holds in a real browser: no page of the app needs an inline script
or style, htmx works under it (a live HTMX swap), and Swagger UI on /api/docs renders with
scripts from 'self' only (its inline styles are allowed on that path alone)."""

import re

from playwright.sync_api import expect

from aegis.security import CSP, CSP_RELAXED_STYLES
from tests.browser.conftest import log_in, review_and_send
from tests.factories import PASSWORD, make_account, make_user


def watch_csp(page) -> list[str]:
    """Collect the browser's CSP violation reports for `page`."""
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return violations


def test_pages_run_under_the_strict_policy(live_server, open_page, bank):
    owner = make_account(user=make_user(email="csp@example.com", name="Csp Owner"))
    staff = make_user(email="csp-staff@example.com", role="ADMIN")
    page = open_page()
    violations = watch_csp(page)
    response = page.goto(live_server.url + "/")
    assert response.headers["content-security-policy"] == CSP
    log_in(page, live_server.url, owner.user.email)
    for path in ("/dashboard", "/transfer", "/transactions", "/account/password"):
        assert page.goto(live_server.url + path).headers["content-security-policy"] == CSP
    page.goto(live_server.url + "/no-such-page")
    # A live HTMX request: a transfer that fails (insufficient funds) swaps its result panel in.
    page.goto(live_server.url + "/transfer")
    page.fill("#id_to_account", str(make_account(user=make_user(name="Ravi Payee")).pk))
    page.fill("#id_amount", "10")
    review_and_send(page)
    expect(page.locator("[data-testid=result]")).to_have_attribute("data-status", "FAILED")

    admin = open_page()
    violations += watch_csp(admin)
    log_in(admin, live_server.url, staff.email, PASSWORD)
    for path in ("/staff/users", "/staff/transactions", "/staff/stats", "/staff/fund", "/staff/events"):
        admin.goto(live_server.url + path)
    assert violations == []


def test_swagger_ui_runs_with_scripts_from_self_only(live_server, open_page):
    page = open_page()
    violations = watch_csp(page)
    response = page.goto(live_server.url + "/api/docs")
    policy = response.headers["content-security-policy"]
    assert policy == CSP_RELAXED_STYLES
    assert re.search(r"script-src 'self';", policy) and "unsafe-eval" not in policy
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Aegis")
    expect(page.locator(".opblock").first).to_be_visible()
    assert violations == []
