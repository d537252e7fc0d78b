"""Fixtures for server-rendered page tests (Django's test client, a real embedded server)."""

import pytest
from django.test import Client

from accounts.models import Role
from accounts.services import system_bootstrap
from tests.factories import make_account, make_user


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"


@pytest.fixture
def bootstrap(tmp_path):
    return system_bootstrap(credentials_path=tmp_path / "credentials.json")


@pytest.fixture
def sender():
    return make_account(user=make_user(name="Sender"), balance=0)


@pytest.fixture
def receiver():
    return make_account(user=make_user(name="Receiver"))


@pytest.fixture
def staff():
    return make_user(role=Role.ADMIN, name="Staff")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def htmx_client_for(user) -> Client:
    client = Client(headers={"HX-Request": "true"})
    client.force_login(user)
    return client
