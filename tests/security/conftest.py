"""Fixtures for the security tests (the browser one lives in tests/browser/test_csp.py, which
shares that folder's single Playwright browser)."""

import pytest


@pytest.fixture
def generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"
    settings.AEGIS_RATELIMIT_LOGIN = "100000/15m"
