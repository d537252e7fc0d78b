"""No page is wider than a 390 px phone, and every rupee figure on it reads like ₹1,00,000.00: every
page a visitor, a customer or a staff member can open is loaded at 390×844 in Chromium, its
document must not scroll sideways and its money must be in Indian grouping with paise.

The list of pages is built from the URL conf, so a page added later is measured without anyone
remembering to list it: every GET route of the product's namespaces, its path parameters filled
with real objects of a small bank made here (a completed transfer, a dispute, a reversal proposal,
the customer's account). A route that answers something other than an HTML page (a download, a
poll, a POST-only action) is recognised by its answer and left out, and the test says which it
measured so a silently shrinking list shows.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from playwright.sync_api import Error as PlaywrightError

from accounts.models import Role
from disputes.services import dispute_open, reversal_propose
from tests.browser.conftest import PHONE, log_in
from tests.factories import make_account, make_user
from transfers.services import system_fund, transfer_create

CUSTOMER_NAMESPACES = {"", "accounts", "transfers", "statements", "disputes", "notifications", "payees"}
STAFF_NAMESPACES = {"adminpanel"}
# Routes that are never a page: they answer a file, a poll or a redirect whatever the method.
NOT_PAGES = {"accounts:logout", "accounts:session-keepalive", "notifications:poll"}
PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
# Every rupee figure a page shows goes through the `inr` filter: ₹1,00,000.00, never ₹100,000.00
# or ₹100000. A figure is a ₹ sign followed by a digit; labels such as "Min ₹" are not figures.
RUPEES = re.compile(r"₹\s?\d[\d,]*(?:\.\d+)?")
INDIAN = re.compile(r"₹(?:\d{1,3}|\d{1,2}(?:,\d{2})*,\d{3})\.\d{2}")


def routes(namespaces: set[str]) -> list[tuple[str, str]]:
    """(url name, path pattern) of every route in these namespaces (top-level ones count as "")."""
    found = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace in namespaces:
                name = f"{namespace}:{pattern.name}" if namespace else str(pattern.name)
                if name not in NOT_PAGES and "(?P" not in str(pattern.pattern):
                    found.append((name, "/" + prefix + str(pattern.pattern)))

    walk(get_resolver().url_patterns, "", "")
    return found


def fill(path: str, values: dict[str, str]) -> str | None:
    """The path with each <param> replaced by a real object's id, or None when there is none."""
    names = PARAM.findall(path)
    if any(name not in values for name in names):
        return None
    return PARAM.sub(lambda m: values[m.group(1)], path)


def document_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def widest(page) -> str:
    """The elements sticking out past the viewport, for a failure message a person can act on."""
    return page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .slice(0, 4)
            .map(e => e.tagName.toLowerCase()
                 + (e.classList.length ? '.' + [...e.classList].join('.') : '')
                 + ' ' + Math.round(e.getBoundingClientRect().right) + 'px')
            .join(', ')"""
    )


def measure(
    page, base_url: str, paths: list[tuple[str, str]], shot, who: str, figures: set[str]
) -> tuple[list[str], list[str]]:
    measured, too_wide = [], []
    for name, path in paths:
        try:
            response = page.goto(base_url + path, timeout=30_000)  # a loaded machine is slow, not wrong
        except PlaywrightError as error:
            if "Download is starting" in str(error):
                continue  # a file (statement, receipt PDF), not a page
            raise
        content_type = (response.headers.get("content-type", "") if response else "") or ""
        if response is None or response.status == 405 or not content_type.startswith("text/html"):
            continue  # not a page: a download, a POST-only action
        if response.status >= 500:  # reported with the too-wide pages, so one run lists every problem
            too_wide.append(f"{who} {path} ({name}): answered {response.status}")
            continue
        measured.append(name)
        for figure in RUPEES.findall(page.locator("body").inner_text()):
            figures.add(figure)
            if not INDIAN.fullmatch(figure):
                too_wide.append(f"{who} {path} ({name}): {figure} is not ₹ in Indian grouping with paise")
        width = document_width(page)
        shot(page, f"{who}-{name.replace(':', '-')}")  # one picture per page, to look at by eye
        if width > PHONE["width"]:
            too_wide.append(f"{who} {path} ({name}): {width}px; sticking out: {widest(page)}")
    return measured, too_wide


@pytest.fixture
def small_bank(bank):
    payer = make_account(user=make_user(email="phone-payer@example.com", name="Priya Payer"))
    payee = make_account(user=make_user(email="phone-payee@example.com", name="Ravi Kumar"))
    staff = make_user(email="phone-staff@example.com", role=Role.ADMIN, name="Staff Member")
    # Eleven fundings of ₹10,000 (the most one transfer may move): a balance past one lakh, so the
    # pages show a figure whose Indian grouping (₹1,08,500.00) differs from the western one.
    for n in range(11):
        system_fund(
            actor=bank.system_user, to_account_id=str(payer.pk), amount_paise=1_000_000, idempotency_key=f"f{n}"
        )
    txn = transfer_create(
        actor=payer.user,
        from_account_id=str(payer.pk),
        to_account_id=str(payee.pk),
        amount_paise=150_000,
        idempotency_key="p-pay",
        note="A note long enough to show how the longest field of a row wraps on a phone screen",
    ).transaction
    dispute = dispute_open(user=payer.user, transaction_id=str(txn["_id"]), reason="WRONG_ACCOUNT", note="typo")
    proposal = reversal_propose(staff=staff, transaction_id=str(txn["_id"]), amount_paise=50_000, note="half back")
    values = {
        "transaction_id": str(txn["_id"]),
        "dispute_id": str(dispute["_id"]),
        "proposal_id": str(proposal["_id"]),
        "user_id": str(payer.user.pk),
        "account_id": str(payer.pk),
    }
    return payer, staff, values


def test_every_page_fits_a_390px_phone(live_server, open_page, shot, small_bank):
    payer, staff, values = small_bank
    problems, seen, figures = [], {}, set()

    def visit(who: str, email: str | None, paths: list[tuple[str, str]]) -> set[str]:
        page = open_page(viewport=PHONE)
        if email:
            log_in(page, live_server.url, email)
        measured, wide = measure(page, live_server.url, paths, shot, who, figures)
        problems.extend(wide)
        seen[who] = measured
        return set(measured)

    def pages_of(namespaces: set[str]) -> list[tuple[str, str]]:
        return [(name, path) for name, path in ((n, fill(p, values)) for n, p in routes(namespaces)) if path]

    visitor_pages = [("landing", "/"), ("login", "/login"), ("register", "/register"), ("404", "/no-such-page")]
    assert len(visit("visitor", None, visitor_pages)) == 4
    # The pages people live in must have been measured (a route renamed away shows here).
    assert {"accounts:dashboard", "transfers:create", "transfers:list", "statements:receipt", "disputes:detail",
            "notifications:list", "statements:statement"} <= visit("customer", payer.user.email,
                                                                    pages_of(CUSTOMER_NAMESPACES))  # fmt: skip
    assert {"adminpanel:users", "adminpanel:user", "adminpanel:transactions", "adminpanel:transaction",
            "adminpanel:disputes", "adminpanel:dispute", "adminpanel:reversal",
            "adminpanel:stats"} <= visit("staff", staff.email, pages_of(STAFF_NAMESPACES))  # fmt: skip

    print("measured at 390 px:", seen)
    assert "₹1,08,500.00" in figures, sorted(figures)  # the money check saw a figure past one lakh
    assert not problems, "Pages wider than 390 px (or broken):\n" + "\n".join(problems)


def test_the_money_check_tells_indian_from_western_grouping():
    assert INDIAN.fullmatch("₹1,00,000.00") and INDIAN.fullmatch("₹999.00") and INDIAN.fullmatch("₹12,34,56,789.05")
    assert not INDIAN.fullmatch("₹100,000.00") and not INDIAN.fullmatch("₹100000") and not INDIAN.fullmatch("₹1,500")


def test_the_width_check_sees_an_overflow(live_server, open_page):
    # A check that cannot fail proves nothing: an element wider than the phone must be caught.
    page = open_page(viewport=PHONE)
    page.goto(live_server.url + "/login")
    page.evaluate(
        "() => { const d = document.createElement('div'); d.style.width = '600px'; d.textContent = 'x';"
        " document.querySelector('main').append(d); }"
    )
    assert document_width(page) > PHONE["width"]
