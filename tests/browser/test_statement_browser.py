"""Statements and receipts in a real browser: pick a period, read the summary, download both files."""

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import expect

from aegis.clock import bank_time, now_ms
from ledger.models import AuditAction, AuditLog
from tests.browser.conftest import log_in
from tests.browser.test_csp import watch_csp
from tests.factories import make_account, make_user
from transfers.services import system_fund, transfer_create


def _history(bootstrap, receiver):
    payer = make_account(user=make_user(email="payer@example.com", name="Priya Sharma"))
    system_fund(actor=bootstrap.system_user, to_account_id=str(payer.pk), amount_paise=500_000, idempotency_key="f1")
    for n, paise in enumerate((10_000, 25_050), start=1):
        transfer_create(
            actor=payer.user,
            from_account_id=str(payer.pk),
            to_account_id=str(receiver.pk),
            amount_paise=paise,
            idempotency_key=f"rent-{n}",
            note=f"rent {n}",
        )
    return payer


def _download(page, selector: str) -> tuple[str, bytes]:
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def test_customer_downloads_a_statement_and_opens_a_receipt(live_server, open_page, shot, bootstrap, receiver):
    payer = _history(bootstrap, receiver)
    today = bank_time(now_ms()).date()
    page = open_page()
    violations = watch_csp(page)
    log_in(page, live_server.url, payer.user.email)
    page.goto(live_server.url + "/transactions")
    page.click("[data-testid=statement-link]")
    page.wait_for_url(re.compile(r".*/statement$"))
    page.fill("#id_from", today.replace(day=1).isoformat())
    page.fill("#id_to", today.isoformat())
    page.click("[data-testid=statement-show]")
    summary = page.locator("[data-testid=statement-summary]")
    expect(summary).to_be_visible()
    expect(page.locator("[data-testid=statement-entries]")).to_have_text("3")
    expect(page.locator("[data-testid=statement-opening]")).to_have_text("₹0.00")
    expect(page.locator("[data-testid=statement-closing]")).to_have_text("₹4,649.50")
    shot(page, "statement")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "statement-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    name, body = _download(page, "[data-testid=download-csv]")
    assert name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    text = body.decode("utf-8-sig")
    assert len(rows) >= 4 and "Ravi R." in text and "250.50" in text and "4649.50" in text
    name, body = _download(page, "[data-testid=download-pdf]")
    assert name.endswith(".pdf") and body.startswith(b"%PDF")

    page.goto(live_server.url + "/transactions")
    page.locator("[data-testid=history-table] tbody tr").first.locator("[data-testid=receipt-link]").click()
    page.wait_for_url(re.compile(r".*/transactions/[0-9a-f]{24}$"))
    expect(page.locator("[data-testid=receipt-status] [data-status]")).to_have_attribute("data-status", "COMPLETED")
    expect(page.locator("[data-testid=receipt-amount]")).to_contain_text("₹250.50")
    expect(page.locator("[data-testid=receipt-balance-after]")).to_have_text("₹4,649.50")
    shot(page, "receipt")
    name, body = _download(page, "[data-testid=receipt-pdf]")
    assert name.endswith(".pdf") and body.startswith(b"%PDF")
    assert violations == []


def test_a_bad_range_shows_the_reason_on_the_form(live_server, open_page, bootstrap, receiver):
    payer = _history(bootstrap, receiver)
    page = open_page(javascript=False)
    log_in(page, live_server.url, payer.user.email)
    page.goto(live_server.url + "/statement?from=2026-11-30&to=2026-11-01")
    expect(page.locator("[data-testid=error-to]")).to_contain_text("to must be on or after from")
    expect(page.locator("[data-testid=statement-summary]")).to_have_count(0)


def test_staff_downloads_a_customers_statement_from_their_detail(
    live_server, open_page, shot, staff, bootstrap, receiver
):
    payer = _history(bootstrap, receiver)
    admin = open_page()
    violations = watch_csp(admin)
    log_in(admin, live_server.url, staff.email)
    admin.goto(live_server.url + "/staff/users?q=payer")
    admin.locator("tr[data-email='payer@example.com'] [data-testid=user-link]").click()
    admin.wait_for_url(re.compile(rf".*/staff/users/{payer.user.pk}$"))
    expect(admin.locator("[data-testid=user-name]")).to_have_text("Priya Sharma")
    expect(admin.locator("[data-testid=user-entries] tbody tr")).to_have_count(3)
    shot(admin, "user-detail")
    admin.click("[data-testid=user-statement] [data-testid=statement-show]")
    expect(admin.locator("[data-testid=statement-closing]")).to_have_text("₹4,649.50")
    shot(admin, "staff-statement")
    name, body = _download(admin, "[data-testid=download-csv]")
    text = body.decode("utf-8-sig")
    assert name.endswith(".csv") and "Ravi Receiver" in text  # staff see full names
    name, body = _download(admin, "[data-testid=download-pdf]")
    assert body.startswith(b"%PDF")
    downloads = AuditLog.objects.filter(action=AuditAction.STATEMENT_DOWNLOADED, actor_id=str(staff.pk))
    assert sorted(d.details["format"] for d in downloads) == ["csv", "pdf"]
    assert violations == []
