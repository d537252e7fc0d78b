"""A session's end in a real browser (static/js/aegis.js, accounts.session_end): the warning before
the idle limit and its "Stay signed in"; the page leaving for the login page, which says why,
when the limit passes; and the dashboard's background refresh after a freeze, which loads the
login page in the window instead of pasting it into the balance card."""

import re

from playwright.sync_api import expect

from accounts.auth import token_issue
from accounts.models import Role
from tests.accounts.conftest import ApiClient
from tests.browser.conftest import log_in
from tests.browser.test_csp import watch_csp
from tests.factories import make_account, make_user

IDLE_SECONDS = 12  # pages warn at half of a limit this short (6 s before it)
LOGIN = re.compile(r".*/login\?next=/dashboard$")


def test_the_idle_warning_keeps_a_user_signed_in_and_the_limit_signs_them_out(live_server, open_page, shot, settings):
    settings.AEGIS_SESSION_IDLE_SECONDS = IDLE_SECONDS
    owner = make_account(user=make_user(email="idle@example.com", name="Ida Idle"))
    page = open_page()
    violations = watch_csp(page)
    log_in(page, live_server.url, owner.user.email)
    # Only the page's own timer and its "Stay signed in" talk to the server here: the background
    # polls are stopped (the notification poll removed, the card copied without htmx). A poll
    # that ends the session at the same moment as the page's reload can race it for the new
    # session cookie, and the notice may then be lost (noted in the issue; cosmetic).
    page.evaluate(
        "document.getElementById('notification-poll')?.remove();"
        "const card = document.getElementById('account-card'); card.replaceWith(card.cloneNode(true));"
    )
    warning = page.locator("[data-testid=session-warning]")
    expect(warning).to_be_hidden()

    expect(warning).to_be_visible(timeout=IDLE_SECONDS * 1000)
    expect(warning).to_contain_text("due to inactivity")
    assert re.search(r"signed out in \d+ s", warning.inner_text())
    shot(page, "warning")
    page.click("[data-testid=stay-signed-in]")
    expect(warning).to_be_hidden()
    page.wait_for_timeout(IDLE_SECONDS * 1000 // 2 + 2000)  # past the limit the warning was about
    assert page.url.endswith("/dashboard")
    expect(page.locator("[data-testid=balance]")).to_be_visible()

    # Nobody clicks this time: at the limit the page leaves for the login page, which says why.
    expect(warning).to_be_visible(timeout=IDLE_SECONDS * 1000)
    page.wait_for_url(LOGIN, timeout=IDLE_SECONDS * 1000)
    expect(page.locator("[data-testid=session-ended]")).to_contain_text("signed out after a period of inactivity")
    expect(page.locator("[data-testid=session-warning]")).to_have_count(0)
    shot(page, "signed-out")
    assert violations == []


def test_the_dashboard_refresh_after_a_freeze_navigates_to_the_login_page(live_server, open_page, shot):
    owner = make_account(user=make_user(email="frozen-soon@example.com", name="Fran Frozen"))
    staff_token = token_issue(user=make_user(role=Role.ADMIN, name="Staff"))
    page = open_page()
    log_in(page, live_server.url, owner.user.email)
    expect(page.locator("#account-card [data-testid=balance]")).to_be_visible()
    # Leave the card's refresh (every 15 s) as the only background request on the page.
    page.evaluate("document.getElementById('notification-poll').remove()")
    refreshes = []
    page.on(
        "response",
        lambda r: refreshes.append(r) if r.url.endswith("/dashboard") and r.request.headers.get("hx-request") else None,
    )

    assert ApiClient(token=staff_token).patch(f"/api/admin/freeze/{owner.pk}").status_code == 200
    page.wait_for_url(LOGIN, timeout=25_000)

    assert refreshes and "hx-redirect" in refreshes[-1].headers  # it was the card's refresh
    expect(page.locator("[data-testid=session-ended]")).to_contain_text("Your account was frozen")
    expect(page.locator("#account-card")).to_have_count(0)
    expect(page.locator("form[action='/login']")).to_have_count(1)
    expect(page.locator("header.topbar")).to_have_count(1)
    shot(page, "login")
