"""The searchable history in a real browser, at 1280 and 390 px, with and without JavaScript:
filter by text and direction, read names and balances, fix a bad amount, clear the filters."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, log_in
from tests.factories import make_account, make_user
from transfers.services import system_fund, transfer_create


def _history(bootstrap):
    meera = make_account(user=make_user(email="meera@example.com", name="Meera Menon"))
    ravi = make_account(user=make_user(email="ravi@example.com", name="Ravi Kumar"))
    system_fund(actor=bootstrap.system_user, to_account_id=str(meera.pk), amount_paise=1_000_000, idempotency_key="f1")
    for n, (paise, note) in enumerate(((120_000, "Rent for November"), (45_050, "Groceries"), (9_900, "Chai")), 1):
        transfer_create(
            actor=meera.user,
            from_account_id=str(meera.pk),
            to_account_id=str(ravi.pk),
            amount_paise=paise,
            idempotency_key=f"h-{n}",
            note=note,
        )
    return meera


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_customer_searches_the_history(live_server, open_page, shot, bootstrap, javascript, viewport):
    meera = _history(bootstrap)
    page = open_page(javascript=javascript, viewport=viewport)
    log_in(page, live_server.url, meera.user.email)
    page.goto(live_server.url + "/transactions")
    rows = page.locator("[data-testid=history-table] tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.first.locator("[data-testid=counterparty]")).to_have_text("Ravi K.")
    expect(rows.first.locator("[data-testid=balance-after]")).to_have_text("₹8,250.50")
    expect(rows.last.locator("[data-testid=counterparty]")).to_have_text("Aegis funding")
    name = f"history-{'js' if javascript else 'nojs'}-{viewport['width']}"
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(page, name)

    page.fill("[data-testid=filter-q]", "rent")
    page.select_option("[data-testid=filter-direction]", "OUT")
    page.click("[data-testid=filter-apply]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Rent for November")
    expect(rows.first).to_contain_text("₹1,200.00")
    assert "q=rent" in page.url and "direction=OUT" in page.url
    shot(page, f"{name}-filtered")

    page.fill("[data-testid=filter-min]", "10.001")
    page.click("[data-testid=filter-apply]")
    expect(page.locator("[data-testid=error-min]")).to_contain_text("Minimum amount")
    expect(page.locator("[data-testid=filter-min]")).to_have_value("10.001")
    expect(page.locator("[data-testid=history-table]")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(page, f"{name}-bad-input")

    page.fill("[data-testid=filter-min]", "5000")
    page.click("[data-testid=filter-apply]")
    expect(page.locator("[data-testid=history-empty]")).to_contain_text("Nothing matches these filters")
    page.click("[data-testid=empty-clear]")
    expect(rows).to_have_count(4)
    expect(page.locator("[data-testid=filter-q]")).to_have_value("")
