"""Staff console flows in a real browser."""

import re

from playwright.sync_api import expect

from events.dispatcher import Dispatcher
from tests.browser.conftest import log_in
from tests.factories import make_account, make_user
from transfers import exceptions as exc
from transfers.services import system_fund, transfer_create


def test_staff_freezes_an_account_and_its_transfer_form_is_disabled(live_server, open_page, shot, staff, receiver):
    owner = make_account(user=make_user(email="freeze-me@example.com", name="Fiona Frozen"))
    admin = open_page()
    log_in(admin, live_server.url, staff.email)
    admin.goto(live_server.url + "/staff/users")
    admin.fill("#id_q", "freeze-me")
    row = admin.locator("tr[data-email='freeze-me@example.com']")
    expect(admin.locator("[data-testid=users-table] tbody tr")).to_have_count(1)
    # A login seconds ago counts as the password confirmation (docs/staff.md): within that window
    # the list acts in place (HTMX, after a confirm dialog), with no password page in between.
    admin.on("dialog", lambda dialog: dialog.accept())
    row.locator("[data-testid=freeze]").click()
    expect(row.locator("[data-status=FROZEN]")).to_be_visible()
    expect(admin.locator(".toast-success")).to_contain_text("frozen")
    row.locator("[data-testid=unfreeze]").click()
    expect(row.locator("[data-status=ACTIVE]")).to_be_visible()
    row.locator("[data-testid=freeze]").click()
    expect(row.locator("[data-status=FROZEN]")).to_be_visible()
    expect(row.locator("[data-testid=unfreeze]")).to_be_visible()
    shot(admin, "users-frozen")

    user = open_page()
    log_in(user, live_server.url, owner.user.email)
    expect(user.locator("[data-testid=account-status]")).to_have_text("FROZEN")
    user.goto(live_server.url + "/transfer")
    expect(user.locator("[data-testid=not-active]")).to_be_visible()
    expect(user.locator("[data-testid=transfer-form] button[type=submit]")).to_be_disabled()
    expect(user.locator("#id_amount")).to_be_disabled()
    shot(user, "transfer-disabled")


def test_staff_unfreezes_without_javascript(live_server, open_page, shot, staff):
    owner = make_account(user=make_user(email="thaw@example.com"), status="FROZEN")
    admin = open_page(javascript=False)
    log_in(admin, live_server.url, staff.email)
    admin.goto(live_server.url + "/staff/users?q=thaw")
    admin.locator("tr[data-email='thaw@example.com'] [data-testid=unfreeze]").click()
    expect(admin.locator("h1")).to_have_text("Unfreeze this account?")
    expect(admin.locator("[data-testid=reauth-password]")).to_have_count(0)  # signed in just now
    shot(admin, "confirm-nojs")
    admin.click("[data-testid=confirm]")
    admin.wait_for_url(re.compile(r".*/staff/users$"))
    expect(admin.locator("tr[data-email='thaw@example.com'] [data-status=ACTIVE]")).to_be_visible()
    owner.refresh_from_db()
    assert owner.status == "ACTIVE"


def test_staff_filters_transactions_and_opens_the_details_modal(
    live_server, open_page, shot, staff, bootstrap, receiver
):
    payer = make_account(user=make_user(email="payer@example.com"))
    system_fund(actor=bootstrap.system_user, to_account_id=str(payer.pk), amount_paise=50_000, idempotency_key="f1")
    transfer_create(
        actor=payer.user,
        from_account_id=str(payer.pk),
        to_account_id=str(receiver.pk),
        amount_paise=10_000,
        idempotency_key="ok-1",
    )
    try:
        transfer_create(
            actor=payer.user,
            from_account_id=str(payer.pk),
            to_account_id=str(receiver.pk),
            amount_paise=900_000,
            idempotency_key="too-much-1",
        )
    except exc.TransferFailed:
        pass
    admin = open_page()
    log_in(admin, live_server.url, staff.email)
    admin.goto(live_server.url + "/staff/transactions")
    expect(admin.locator("[data-testid=txn-table] tbody tr")).to_have_count(3)
    admin.select_option("#id_status", "FAILED")
    admin.fill("#id_account", str(payer.pk))
    admin.click("[data-testid=txn-filters] button[type=submit]")
    expect(admin.locator("[data-testid=txn-table] tbody tr")).to_have_count(1)
    assert "status=FAILED" in admin.url
    admin.click("[data-testid=details]")
    modal = admin.locator("[data-testid=txn-modal]")
    expect(modal).to_be_visible()
    expect(modal.locator("[data-testid=detail-key]")).to_have_text("too-much-1")
    expect(modal.locator("[data-testid=detail-retry-count]")).to_contain_text("1 of 3")
    expect(modal.locator("[data-testid=detail-failure-reason]")).to_contain_text("Insufficient funds")
    shot(admin, "details-modal")
    admin.keyboard.press("Escape")
    expect(modal).to_have_count(0)

    # The stats come from the rollups, as of the last delivered outbox event: deliver them first.
    dispatcher = Dispatcher()
    while any(dispatcher.run_once().values()):
        pass
    admin.goto(live_server.url + "/staff/stats")
    expect(admin.locator("[data-testid=stat-cards]")).to_contain_text("Transactions")
    expect(admin.locator("svg.chart rect").first).to_be_visible()
    shot(admin, "stats")


def test_staff_sees_a_parked_event_and_requeues_it(live_server, open_page, shot, staff, bootstrap, settings):
    from tests.factories import park_outbox_events

    account = make_account()
    system_fund(actor=bootstrap.system_user, to_account_id=str(account.pk), amount_paise=5_000, idempotency_key="p1")
    assert len(park_outbox_events(settings)) == 1
    admin = open_page()
    log_in(admin, live_server.url, staff.email)
    admin.goto(live_server.url + "/staff/users")
    admin.click("nav.staff-nav >> text=Events")
    expect(admin.locator("[data-testid=parked-count]")).to_have_text("1")
    expect(admin.locator("[data-testid=parked-table]")).to_contain_text("mail relay refused the connection")
    shot(admin, "events-parked")
    admin.click("[data-testid=requeue]")
    expect(admin.locator(".toast-success")).to_contain_text("Requeued 1 event")
    expect(admin.locator("[data-testid=no-parked]")).to_be_visible()
