"""Accessibility in a real browser: the modal's focus, toasts (one per text, errors kept), the bell
dropping at once after "Mark read", autocomplete on the sign-in forms, a top bar that fits a phone,
and SVG icons where emoji used to be."""

import re

from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from playwright.sync_api import expect

from events.dispatcher import Dispatcher
from notifications.templatetags.notification_tags import toasts_grouped
from tests.browser.conftest import DESKTOP, PHONE, log_in
from tests.factories import make_account, make_user
from transfers.services import system_fund, transfer_create


def _staff_list_with_a_transfer(bank, staff):
    payer = make_account(user=make_user(email="a11y-payer@example.com", name="Priya Payer"))
    system_fund(actor=bank.system_user, to_account_id=str(payer.pk), amount_paise=20_000, idempotency_key="a11y-f")
    return payer


def test_the_details_modal_takes_focus_traps_tab_and_closes_on_escape(live_server, open_page, shot, bank, staff):
    _staff_list_with_a_transfer(bank, staff)
    page = open_page()
    log_in(page, live_server.url, staff.email)
    page.goto(live_server.url + "/staff/transactions")
    opener = page.locator("a[hx-target='#modal']").first
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#modal .modal")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("role", "dialog")
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(dialog).to_be_focused()  # the dialog took focus (a screen reader starts at its title)
    shot(page, "modal-open")

    # Tab and Shift+Tab go round the dialog's own controls, never to the page behind it.
    inside = "() => document.querySelector('#modal .modal').contains(document.activeElement)"
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate(inside)
    for _ in range(6):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(inside)

    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()  # focus comes back to the link that opened it

    # The close link does the same, and so does a click on the backdrop.
    opener.click()
    expect(dialog).to_be_visible()
    page.locator("#modal [data-close-modal]").click()
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()


def test_toasts_are_shown_once_with_a_count_and_errors_stay(live_server, open_page, shot, bank):
    payer = make_account(user=make_user(email="toast@example.com"))
    page = open_page()
    log_in(page, live_server.url, payer.user.email)
    page.wait_for_function("() => window.htmx !== undefined")
    # What an htmx answer's HX-Trigger does (transfers.views.render_page): the same failure three
    # times, once interleaved with a success.
    page.evaluate(
        """() => {
        const fire = (items) => document.body.dispatchEvent(
            new CustomEvent('aegis:toasts', {bubbles: true, detail: {items}}));
        const failed = {level: 'error', text: 'Transfer failed: insufficient funds.'};
        fire([failed]);
        fire([{level: 'success', text: 'Transfer completed.'}, failed]);
        fire([failed]);
    }"""
    )
    errors = page.locator("#toasts .toast-error")
    expect(errors).to_have_count(1)
    expect(errors.locator(".toast-count")).to_have_text("×3")
    expect(page.locator("#toasts .toast-success")).to_have_count(1)
    shot(page, "toasts")
    # An error has no fade-out: it stays until dismissed; the success fades.
    animation = "el => getComputedStyle(el).animationName"
    assert "toast-out" not in errors.evaluate(animation)
    assert "toast-out" in page.locator("#toasts .toast-success").evaluate(animation)
    errors.locator("[data-dismiss]").click()
    expect(errors).to_have_count(0)


def test_messages_are_grouped_by_text_and_level_without_javascript():
    messages = [
        Message(constants.ERROR, "Transfer failed."),
        Message(constants.SUCCESS, "Transfer completed."),
        Message(constants.ERROR, "Transfer failed."),
        Message(constants.WARNING, "Transfer failed."),
        Message(constants.ERROR, "Transfer failed."),
    ]
    grouped = [(t.text, t.level, t.count) for t in toasts_grouped(messages)]
    assert grouped == [
        ("Transfer failed.", "error", 3),
        ("Transfer completed.", "success", 1),
        ("Transfer failed.", "warning", 1),
    ]


def test_the_bell_count_drops_as_soon_as_a_notification_is_marked_read(live_server, open_page, shot, bank, receiver):
    payer = make_account(user=make_user(email="bell@example.com", name="Bela Bell"))
    system_fund(actor=bank.system_user, to_account_id=str(payer.pk), amount_paise=50_000, idempotency_key="b-f")
    for n in range(2):
        transfer_create(
            actor=payer.user,
            from_account_id=str(payer.pk),
            to_account_id=str(receiver.pk),
            amount_paise=1_000,
            idempotency_key=f"b-{n}",
        )
    dispatcher = Dispatcher()
    while any(dispatcher.run_once().values()):
        pass
    page = open_page()
    log_in(page, live_server.url, payer.user.email)
    page.goto(live_server.url + "/notifications")
    bell = page.locator("[data-testid=notification-bell]")
    before = int(bell.locator(".bell-count").inner_text())
    assert before >= 2
    assert bell.locator("svg.icon").count() == 1  # an SVG bell, not an emoji
    page.locator("button", has_text="Mark read").first.click()
    # At once, not at the next 10 s poll: well under the poll's period.
    expect(bell.locator(".bell-count")).to_have_text(str(before - 1), timeout=3_000)
    expect(page.locator("#notification-read-all button")).to_have_text(f"Mark all read ({before - 1})", timeout=3_000)
    shot(page, "bell-after-mark-read")


def test_sign_in_forms_say_what_to_autocomplete(live_server, open_page):
    page = open_page(javascript=False)
    page.goto(live_server.url + "/login")
    expect(page.locator("#id_email")).to_have_attribute("autocomplete", "email")
    expect(page.locator("#id_password")).to_have_attribute("autocomplete", "current-password")
    page.goto(live_server.url + "/register")
    expect(page.locator("#id_name")).to_have_attribute("autocomplete", "name")
    expect(page.locator("#id_email")).to_have_attribute("autocomplete", "email")
    expect(page.locator("#id_password")).to_have_attribute("autocomplete", "new-password")


def test_password_change_form_autocompletes(live_server, open_page):
    user = make_account(user=make_user(email="pw@example.com")).user
    page = open_page(javascript=False)
    log_in(page, live_server.url, user.email)
    page.goto(live_server.url + "/account/password")
    expect(page.locator("#id_current_password")).to_have_attribute("autocomplete", "current-password")
    expect(page.locator("#id_new_password")).to_have_attribute("autocomplete", "new-password")


def test_the_top_bar_fits_a_phone_with_every_link_visible(live_server, open_page, shot, staff):
    for viewport in (PHONE, DESKTOP):
        page = open_page(viewport=viewport)
        log_in(page, live_server.url, staff.email)
        page.goto(live_server.url + "/dashboard")
        bar = page.locator("header.topbar")
        assert bar.evaluate("el => el.scrollWidth <= el.clientWidth")
        for link in page.locator("nav.nav > a").all():
            box = link.bounding_box()
            assert box and 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"], link.inner_text()
        expect(page.locator("header button", has_text="Log out")).to_be_in_viewport()
        shot(page, f"topbar-{viewport['width']}")


def test_empty_states_use_svg_icons_not_emoji(live_server, open_page):
    user = make_account(user=make_user(email="empty@example.com")).user
    page = open_page(javascript=False)
    log_in(page, live_server.url, user.email)
    emoji = re.compile(r"[\U0001F000-\U0001FFFF\u2600-\u27BF\uFE0F]")
    for path in ("/notifications", "/disputes"):
        page.goto(live_server.url + path)
        assert page.locator(".empty .empty-icon svg.icon").count() == 1, path
        assert not emoji.search(page.locator("body").inner_text()), path
