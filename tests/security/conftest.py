"""Fixtures for the security tests (the browser one lives in tests/browser/test_csp.py, which
shares that folder's single Playwright browser)."""

import pytest
from django.core.management import call_command
from django.test import override_settings


@pytest.fixture(scope="package", autouse=True)
def collected_static(tmp_path_factory):
    """Static files as `make run` serves them: collected into STATIC_ROOT, which WhiteNoise serves
    with DEBUG off. A fresh folder per run, so no test depends on an earlier one's leftovers."""
    static_root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=static_root):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield static_root


@pytest.fixture
def generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"
    settings.AEGIS_RATELIMIT_LOGIN = "100000/15m"
