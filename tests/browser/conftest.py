"""Browser tests: Playwright for Python driving Debian's Chromium against pytest-django's
`live_server` (a real HTTP server in a thread, on the same embedded database as the test).

Playwright cannot download browsers here, so the system Chromium is launched by path; `make
install-dev` installs it (apt) when /usr/bin/chromium is missing. Screenshots go to artifacts/.
"""

import os
import re
from pathlib import Path

import pytest

from accounts.models import Role, TotpDevice, User
from accounts.services import system_bootstrap
from tests.factories import PASSWORD, make_account, make_user, totp_code

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run while a
# loop is running unless told that this (single-threaded, test-only) use is safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("AEGIS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install-dev` (installs Debian's chromium package).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    # One browser, one IP, many requests: the production limits would trip within a test.
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"


DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}  # the phone the issue-19 walk-through used


def _new_page(browser, *, javascript: bool = True, viewport: dict | None = None):
    context = browser.new_context(viewport=viewport or DESKTOP, java_script_enabled=javascript)
    context.set_default_timeout(10_000)
    return context, context.new_page()


@pytest.fixture
def open_page(browser):
    """open_page(javascript=True, viewport=DESKTOP) -> a fresh page in its own context (its own cookies)."""
    contexts = []

    def factory(*, javascript: bool = True, viewport: dict | None = None):
        context, page = _new_page(browser, javascript=javascript, viewport=viewport)
        contexts.append(context)
        return page

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture
def shot(request):
    """shot(page, "name") saves artifacts/<test>-<name>.png and returns the path."""
    ARTIFACTS.mkdir(exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{test}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def bootstrap(tmp_path):
    return system_bootstrap(credentials_path=tmp_path / "credentials.json")


@pytest.fixture
def staff():
    return make_user(email="staff@example.com", role=Role.ADMIN, name="Staff Member")


@pytest.fixture
def receiver():
    return make_account(user=make_user(email="receiver@example.com", name="Ravi Receiver"))


SIGNED_IN = re.compile(r".*/(dashboard|staff/users)$")  # staff land on the staff console
OWES_A_CODE = re.compile(r".*/(login/code|account/two-factor/enrol)(\?.*)?$")


def log_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Sign in as a person would: the password, then (staff, or a customer who opted in) the code
    computed from the device's secret, enrolling first through the page when staff have none."""
    page.goto(f"{base_url}/login")
    page.fill("#id_email", email)
    page.fill("#id_password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(lambda url: bool(SIGNED_IN.match(url) or OWES_A_CODE.match(url)))
    if "/account/two-factor/enrol" in page.url:
        secret = page.locator("[data-testid=two-factor-secret]").inner_text().replace(" ", "")
        page.fill("#id_code", totp_code(secret))
        page.click("[data-testid=two-factor-confirm]")
        page.click("[data-testid=two-factor-done]")
    elif "/login/code" in page.url:
        device = TotpDevice.objects.get(user=User.objects.get(email=email))
        page.fill("#id_code", totp_code(device.secret, after_step=device.last_step))
        page.click("[data-testid=two-factor-submit]")
    page.wait_for_url(SIGNED_IN)


def review_and_send(page) -> None:
    """The transfer form's two steps: Review, then tick "I am paying ..." (a payee needs none) and Send."""
    page.click("[data-testid=review]")
    page.locator("[data-testid=send]").wait_for()
    confirm = page.locator("[data-testid=confirm-name]")
    if confirm.count():
        confirm.check()
    page.click("[data-testid=send]")
