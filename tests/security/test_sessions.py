"""Session lifetimes (15 min idle, 12 h absolute; proven by moving the stored clocks, not by
sleeping), background polls that do not count as activity, and a password change that signs
out every other session and every API token while keeping the current one.

How a session ends, as a page sees it (accounts.session_end): whatever ended it (idle or absolute
limit, a freeze, a password change elsewhere, logout), an htmx request answers HX-Redirect to the
login page instead of the login page's HTML, and the login page says why, once, to that browser
only. "Stay signed in" (POST /session/keepalive) restarts the idle clock. Staff land on /staff/."""

import hashlib
import time

import pytest
from django.conf import settings
from django.test import Client

from accounts.auth import token_issue
from accounts.models import RecoveryCode, Role, TotpDevice
from aegis.security import SESSION_SEEN, SESSION_STARTED
from tests.accounts.conftest import ApiClient
from tests.factories import PASSWORD, enrol_totp, make_account, make_user, totp_code

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


HTMX = {"HX-Request": "true"}
POLL = {"HX-Request": "true", "X-Aegis-Background": "1"}
# Each way a session ends, and what the login page then says.
REASONS = {
    "idle": "signed out after a period of inactivity",
    "absolute": "Your session reached its time limit",
    "frozen": "Your account was frozen",
    "password": "Your password was changed",
    "logout": "You signed out.",
}


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/login")


def assert_hx_login(response, next_path: str = "/dashboard") -> str:
    """htmx is told to load the login page in the window: no login page HTML in the fragment."""
    assert response.status_code == 200, response.status_code
    assert "Location" not in response and response.content == b""
    assert response["HX-Redirect"] == f"/login?next={next_path}"
    return response["HX-Redirect"]


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
    assert_hx_login(client.get("/dashboard", headers=POLL))


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


# --- how a session ends, as an htmx request and the login page see it ---------------------------
def end_session(how: str, client: Client, owner, admin_token: str) -> None:
    """End `client`'s session the way a user would meet it (a freeze and a password change
    happen elsewhere: through the staff API and another signed-in browser)."""
    if how == "idle":
        shift(client, aegis_seen_at=15 * 60 + 1)
    elif how == "absolute":
        shift(client, aegis_auth_at=12 * 60 * 60 + 1)
    elif how == "frozen":
        response = ApiClient(token=admin_token).patch(f"/api/admin/freeze/{owner.pk}")
        assert response.status_code == 200, response.content
    elif how == "password":
        form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
        assert signed_in(owner.user).post("/account/password", form).status_code == 302
    elif how == "logout":
        assert client.post("/logout").status_code == 302


@pytest.fixture
def admin_token(generous_limits):
    admin = make_user(role=Role.ADMIN, name="Staff")
    return token_issue(user=admin)


@pytest.mark.parametrize("how", REASONS)
@pytest.mark.parametrize("partial", ["card", "notifications"])
def test_a_partial_after_the_session_ended_redirects_htmx_to_the_login_page_with_the_reason(
    how, partial, owner, admin_token
):
    client = signed_in(owner.user)
    assert client.get("/dashboard", headers=POLL).status_code == 200  # the card refreshes while signed in
    end_session(how, client, owner, admin_token)
    if partial == "card":
        target = assert_hx_login(client.get("/dashboard", headers=POLL))
    else:  # the bell's poll: after login, back to the page the user was on, not to the fragment
        current = {"HX-Current-URL": "http://testserver/transactions?page=2"}
        response = client.get("/notifications/poll?since=0", headers=POLL | current)
        target = assert_hx_login(response, next_path="/transactions%3Fpage%3D2")
    login = client.get(target)
    assert login.status_code == 200
    notice = login.content.decode()
    assert 'data-testid="session-ended"' in notice and REASONS[how] in notice
    assert [r for r in REASONS.values() if r in notice] == [REASONS[how]]
    again = client.get("/login")
    assert b'data-testid="session-ended"' not in again.content  # said once
    assert_hx_login(client.get("/dashboard", headers=HTMX))  # and the session stays ended


def test_a_user_initiated_htmx_request_is_redirected_too_and_a_plain_page_still_gets_a_302(owner):
    client = signed_in(owner.user)
    shift(client, aegis_seen_at=15 * 60 + 1)
    assert_hx_login(client.get("/dashboard", headers=HTMX))
    assert Client().get("/dashboard")["Location"] == "/login?next=/dashboard"  # no htmx: a real redirect
    assert_hx_login(Client().get("/dashboard", headers=HTMX))  # never signed in at all


def test_a_foreign_current_url_is_not_used_as_next(owner):
    response = Client().get("/dashboard", headers=HTMX | {"HX-Current-URL": "https://evil.example/steal"})
    assert_hx_login(response)


def test_the_reason_goes_only_to_the_browser_whose_session_ended(owner, admin_token):
    client = signed_in(owner.user)
    end_session("frozen", client, owner, admin_token)
    stranger = Client()
    assert b'data-testid="session-ended"' not in stranger.get("/login").content
    assert b"Your account was frozen" in client.get(assert_hx_login(client.get("/dashboard", headers=POLL))).content


def test_a_freeze_then_unfreeze_still_says_frozen_and_logging_in_again_works(owner, admin_token):
    client = signed_in(owner.user)
    staff = ApiClient(token=admin_token)
    assert staff.patch(f"/api/admin/freeze/{owner.pk}").status_code == 200
    assert staff.patch(f"/api/admin/unfreeze/{owner.pk}").status_code == 200
    target = assert_hx_login(client.get("/dashboard", headers=POLL))
    assert b"Your account was frozen" in client.get(target).content
    response = client.post("/login", {"email": owner.user.email, "password": PASSWORD})
    assert response.status_code == 302 and client.get("/dashboard").status_code == 200


def test_a_deactivated_user_is_signed_out_with_a_neutral_reason(owner):
    client = signed_in(owner.user)
    type(owner.user).objects.filter(pk=owner.user.pk).update(is_active=False)
    target = assert_hx_login(client.get("/dashboard", headers=POLL))
    assert b"Your session has ended" in client.get(target).content
    assert is_login_redirect(client.get("/dashboard"))  # the session itself is gone


def test_pages_and_responses_carry_the_time_left(owner):
    client = signed_in(owner.user)
    shift(client, aegis_seen_at=10 * 60, aegis_auth_at=10 * 60)
    page = client.get("/dashboard")
    assert 'data-session-warn="60"' in page.content.decode()
    idle = int(page["X-Aegis-Session-Idle"])
    assert 15 * 60 - 5 <= idle <= 15 * 60  # a page is activity: the idle clock restarted
    assert 12 * 60 * 60 - 10 * 60 - 5 <= int(page["X-Aegis-Session-Left"]) <= 12 * 60 * 60 - 10 * 60
    shift(client, aegis_seen_at=5 * 60)
    poll = client.get("/dashboard", headers=POLL)
    assert 10 * 60 - 5 <= int(poll["X-Aegis-Session-Idle"]) <= 10 * 60  # a poll is not
    anonymous = Client().get("/login")
    assert "X-Aegis-Session-Idle" not in anonymous and b"data-session-idle" not in anonymous.content


def test_stay_signed_in_restarts_the_idle_clock(owner):
    client = signed_in(owner.user)
    shift(client, aegis_seen_at=14 * 60 + 30)
    response = client.post("/session/keepalive")
    assert response.status_code == 204
    assert 15 * 60 - 5 <= int(response["X-Aegis-Session-Idle"]) <= 15 * 60
    assert time.time() - client.session[SESSION_SEEN] < 5
    shift(client, aegis_seen_at=14 * 60)
    assert client.get("/dashboard").status_code == 200  # 15.5 min after the last page: still in


def test_keepalive_is_post_with_csrf_for_a_signed_in_user_only(owner):
    assert is_login_redirect(Client().post("/session/keepalive"))
    client = signed_in(owner.user)
    assert client.get("/session/keepalive").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    assert strict.post("/session/keepalive").status_code == 403
    page = strict.get("/dashboard").content.decode()
    token = page.split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]
    assert strict.post("/session/keepalive", headers={"X-CSRFToken": token}).status_code == 204


def test_keepalive_cannot_revive_an_idle_session(owner):
    client = signed_in(owner.user)
    shift(client, aegis_seen_at=15 * 60 + 1)
    assert is_login_redirect(client.post("/session/keepalive"))
    assert is_login_redirect(client.get("/dashboard"))


def test_staff_land_on_the_staff_console_unless_next_says_otherwise(generous_limits):
    staff = make_user(role=Role.ADMIN, name="Staff")
    secret = enrol_totp(staff)
    # A third sign-in within the same minute: a recovery code instead of waiting for a new step.
    RecoveryCode.objects.create(user=staff, code_hash=hashlib.sha256(b"ABCDEFGHJK").hexdigest())

    def with_code(data: dict, code: str, query: str = "") -> str:
        client = Client()
        password = client.post(f"/login{query}", {"email": staff.email, "password": PASSWORD, **data})
        assert password.status_code == 302 and password["Location"].startswith("/login/code")
        return client.post("/login/code", {"code": code, **data})["Location"]

    assert with_code({}, totp_code(secret)) == "/staff/"
    last = TotpDevice.objects.get(user=staff).last_step
    assert with_code({"next": "/transactions"}, totp_code(secret, after_step=last), "?next=/transactions") == (
        "/transactions"
    )
    assert with_code({"next": "https://evil.example/"}, "ABCDE-FGHJK") == "/staff/"


def test_signing_out_everywhere_for_another_reason_says_signed_out_elsewhere(owner):
    from accounts.services import user_sign_out_everywhere

    client = signed_in(owner.user)
    user_sign_out_everywhere(user=owner.user, reason="signed_out_everywhere")
    target = assert_hx_login(client.get("/dashboard", headers=POLL))
    assert b"You were signed out on another device" in client.get(target).content
