"""Session lifetimes (15 min idle, 12 h absolute; proven by moving the stored clocks, not by
sleeping), background polls that do not count as activity, and a password change that signs
out every other session and every API token while keeping the current one."""

import time

import pytest
from django.conf import settings
from django.test import Client

from aegis.security import SESSION_SEEN, SESSION_STARTED
from tests.accounts.conftest import ApiClient
from tests.factories import PASSWORD, make_account, make_user

NEW_PASSWORD = "a brand new passphrase 2026"


@pytest.fixture
def owner(generous_limits):
    return make_account(user=make_user(name="Session Owner"))


def signed_in(user, password=PASSWORD) -> Client:
    client = Client()
    response = client.post("/login", {"email": user.email, "password": password})
    assert response.status_code == 302 and response["Location"] == "/dashboard"
    return client


def shift(client: Client, **seconds_back: int) -> None:
    """Move the session's stored clocks into the past (as if that much time had passed)."""
    session = client.session
    for key, seconds in seconds_back.items():
        session[key] -= seconds
    session.save()


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/login")


def test_settings_match_the_policy():
    assert settings.AEGIS_SESSION_IDLE_SECONDS == 15 * 60
    assert settings.AEGIS_SESSION_ABSOLUTE_SECONDS == 12 * 60 * 60 == settings.SESSION_COOKIE_AGE
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE and settings.SESSION_COOKIE_HTTPONLY


def test_sign_in_starts_both_clocks(owner):
    client = signed_in(owner.user)
    now = time.time()
    assert now - client.session[SESSION_STARTED] < 5 and now - client.session[SESSION_SEEN] < 5


def test_idle_session_ends(owner):
    client = signed_in(owner.user)
    shift(client, aegis_seen_at=14 * 60)
    assert client.get("/dashboard").status_code == 200  # 14 idle minutes: still signed in
    assert time.time() - client.session[SESSION_SEEN] < 5  # ... and that request was activity
    shift(client, aegis_seen_at=15 * 60 + 1)
    response = client.get("/dashboard")
    assert is_login_redirect(response)
    login = client.get(response["Location"])
    assert b"signed out after a period of inactivity" in login.content
    assert is_login_redirect(client.get("/dashboard"))  # the session is gone server-side


def test_session_ends_after_twelve_hours_however_active(owner):
    client = signed_in(owner.user)
    shift(client, aegis_auth_at=12 * 60 * 60 - 60)
    assert client.get("/dashboard").status_code == 200
    shift(client, aegis_auth_at=61)
    response = client.get("/dashboard")
    assert is_login_redirect(response)
    assert b"reached its time limit" in client.get(response["Location"]).content


def test_background_polls_are_not_activity(owner):
    client = signed_in(owner.user)
    shift(client, aegis_seen_at=10 * 60)
    seen = client.session[SESSION_SEEN]
    poll = client.get("/dashboard", headers={"HX-Request": "true", "X-Aegis-Background": "1"})
    assert poll.status_code == 200 and client.session[SESSION_SEEN] == seen
    shift(client, aegis_seen_at=5 * 60 + 1)
    assert is_login_redirect(client.get("/dashboard", headers={"HX-Request": "true", "X-Aegis-Background": "1"}))


def test_password_change_signs_out_other_sessions_and_tokens(owner):
    here, elsewhere = signed_in(owner.user), signed_in(owner.user)
    token = ApiClient().post("/api/auth/login", {"email": owner.user.email, "password": PASSWORD}).json()["token"]
    api = ApiClient(token=token)
    assert api.get("/api/accounts").status_code == 200

    page = here.get("/account/password")
    assert page.status_code == 200 and b'name="current_password"' in page.content
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    response = here.post("/account/password", form)
    assert response.status_code == 302 and response["Location"] == "/dashboard"

    assert here.get("/dashboard").status_code == 200  # this session stays
    assert is_login_redirect(elsewhere.get("/dashboard"))  # every other one ends
    assert api.get("/api/accounts").status_code == 401  # and so does every token issued before
    assert ApiClient().post("/api/auth/login", {"email": owner.user.email, "password": PASSWORD}).status_code == 401
    fresh = ApiClient().post("/api/auth/login", {"email": owner.user.email, "password": NEW_PASSWORD})
    assert ApiClient(token=fresh.json()["token"]).get("/api/accounts").status_code == 200


def test_password_change_checks_the_current_password_and_the_policy(owner):
    client = signed_in(owner.user)
    wrong = {"current_password": "not it at all!", "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    assert b"current password is not right" in client.post("/account/password", wrong).content
    weak = {"current_password": PASSWORD, "new_password": "short", "new_password_confirm": "short"}
    assert b"too short" in client.post("/account/password", weak).content
    differ = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD + "x"}
    assert b"differ" in client.post("/account/password", differ).content
    owner.user.refresh_from_db()
    assert owner.user.check_password(PASSWORD) and owner.user.auth_epoch == 0
    assert client.get("/dashboard").status_code == 200


def test_wrong_current_passwords_hit_the_per_account_limit(owner, settings):
    settings.AEGIS_RATELIMIT_LOGIN = "2/15m"
    client = signed_in(owner.user)
    wrong = {"current_password": "not it at all!", "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    assert [client.post("/account/password", wrong).status_code for _ in range(3)] == [200, 200, 429]
