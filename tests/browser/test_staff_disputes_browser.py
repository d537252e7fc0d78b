"""Maker-checker in a real browser: one staff member proposes a reversal from the dispute page,
a second one (another browser context, own session) approves it with their password, and the
dispute shows resolved; no page breaks the Content-Security-Policy, with or without JavaScript."""

import re

from playwright.sync_api import expect

from accounts.models import Role
from disputes.services import dispute_open
from tests.browser.conftest import log_in
from tests.browser.test_csp import watch_csp
from tests.factories import make_account, make_user
from transfers.services import system_fund, transfer_create


def test_staff_a_proposes_staff_b_approves_and_the_dispute_is_resolved(live_server, browser, open_page, shot, bank):
    payer = make_account(user=make_user(email="payer@example.com", name="Priya Payer"))
    payee = make_account(user=make_user(email="payee@example.com", name="Wrong Payee"))
    system_fund(actor=bank.system_user, to_account_id=str(payer.pk), amount_paise=300_000, idempotency_key="f-1")
    txn = transfer_create(
        actor=payer.user, from_account_id=str(payer.pk), to_account_id=str(payee.pk),
        amount_paise=120_000, idempotency_key="pay-wrong",
    ).transaction  # fmt: skip
    dispute = dispute_open(user=payer.user, transaction_id=str(txn["_id"]), reason="WRONG_ACCOUNT", note="typo")
    make_user(email="maker@example.com", role=Role.ADMIN, name="Mira Maker")
    make_user(email="checker@example.com", role=Role.ADMIN, name="Chetan Checker")

    # Staff A (the maker), without JavaScript: the queue, the dispute, a full reversal proposed.
    maker = open_page(javascript=False)
    violations = watch_csp(maker)
    log_in(maker, live_server.url, "maker@example.com")
    maker.click("[data-testid=staff-nav-disputes]")
    row = maker.locator(f"tr[data-dispute='{dispute['_id']}']")
    expect(row).to_contain_text("Priya Payer")
    expect(row).to_contain_text("₹1,200.00")
    shot(maker, "queue")
    row.locator("[data-testid=open-dispute]").click()
    expect(maker.locator("[data-testid=dispute-state]")).to_have_attribute("data-status", "OPEN")
    expect(maker.locator("[data-testid=left]")).to_have_text("₹1,200.00")
    maker.fill("#id_note", "Typo in the account number; payee confirmed by phone.")
    maker.click("[data-testid=propose]")
    expect(maker.locator(".toast-success")).to_contain_text("A different staff member must approve")
    card = maker.locator("[data-testid=proposal]")
    expect(card).to_have_attribute("data-state", "PENDING")
    expect(card.locator("[data-testid=maker-note]")).to_contain_text("a different staff member must approve")
    expect(card.locator("[data-testid=approve]")).to_have_count(0)
    expect(maker.locator("[data-testid=dispute-state]")).to_have_attribute("data-status", "UNDER_REVIEW")
    shot(maker, "proposed")

    # Staff B (the checker), with JavaScript, on a phone-sized screen: approves with a password.
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        checker = context.new_page()
        violations += watch_csp(checker)
        log_in(checker, live_server.url, "checker@example.com")
        checker.goto(f"{live_server.url}/staff/disputes/{dispute['_id']}")
        card = checker.locator("[data-testid=proposal]")
        expect(card.locator("[data-testid=maker]")).to_contain_text("Mira Maker")
        # Signed in seconds ago: the login counts as the password confirmation (docs/staff.md).
        expect(card.locator("[data-testid=reauth-password]")).to_have_count(0)
        card.locator("[data-testid=decision-note]").fill("Confirmed with the payee.")
        shot(checker, "approve-phone")
        card.locator("[data-testid=approve]").click()
        checker.wait_for_url(re.compile(rf".*/staff/disputes/{dispute['_id']}$"))
        expect(checker.locator(".toast-success")).to_contain_text("Reversal executed")
        expect(checker.locator("[data-testid=dispute-state]")).to_have_attribute("data-status", "RESOLVED_REVERSED")
        expect(checker.locator("[data-testid=proposal]")).to_have_attribute("data-state", "EXECUTED")
        # The customer's answer is the bank's, never the checker's internal note.
        expect(checker.locator("[data-testid=dispute-answer]")).to_have_text("₹1,200.00 was returned to your account.")
        expect(checker.locator("[data-testid=sender-history-balance]")).to_contain_text("₹3,000.00")
        expect(checker.locator("[data-testid=receiver-history-balance]")).to_contain_text("₹0.00")
        expect(checker.locator("[data-testid=audit-trail]")).to_contain_text("REVERSAL_APPROVED")
        # The page fits the phone: nothing wider than the screen but the scrolling tables.
        width = checker.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        shot(checker, "resolved-phone")
        checker.click("[data-testid=reversal-link]")
        expect(checker.locator("[data-testid=reverses-link]")).to_have_text(str(txn["_id"]))
    finally:
        context.close()

    # The maker sees it resolved too; the reversals page lists it as executed.
    maker.reload()
    expect(maker.locator("[data-testid=dispute-state]")).to_have_attribute("data-status", "RESOLVED_REVERSED")
    maker.click("[data-testid=staff-nav-reversals]")
    expect(maker.locator("[data-testid=recent-proposals] [data-testid=proposal]")).to_have_attribute(
        "data-state", "EXECUTED"
    )
    shot(maker, "reversals")
    payer.refresh_from_db()
    payee.refresh_from_db()
    assert (payer.balance, payee.balance) == (300_000, 0)
    assert violations == []
