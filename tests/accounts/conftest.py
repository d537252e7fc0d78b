"""Fixtures for identity and accounts tests: clients that speak JSON and carry a Bearer token."""

import json

import pytest
from django.test import Client

from accounts.auth import token_issue
from tests.factories import PASSWORD, make_account, make_user


class ApiClient(Client):
    """A test client that sends JSON bodies and, when given one, a Bearer token."""

    def __init__(self, token: str | None = None, **defaults):
        if token:
            defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        super().__init__(**defaults)

    def _json(self, method, path, data=None, **extra):
        body = "" if data is None else json.dumps(data)
        return getattr(super(), method)(path, body, content_type="application/json", **extra)

    def post(self, path, data=None, **extra):
        return self._json("post", path, data, **extra)

    def patch(self, path, data=None, **extra):
        return self._json("patch", path, data, **extra)


@pytest.fixture
def api():
    return ApiClient()


@pytest.fixture
def user():
    return make_user(name="Asha Rao")


@pytest.fixture
def account(user):
    return make_account(user=user)


@pytest.fixture
def admin():
    return make_user(role="ADMIN")


def api_as(user) -> ApiClient:
    return ApiClient(token=token_issue(user=user))


@pytest.fixture
def password():
    return PASSWORD
