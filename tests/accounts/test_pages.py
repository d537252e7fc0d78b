"""Browser pages: session login rotates the id, logout ends it, every form needs its CSRF token."""

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from accounts.models import Account
from tests.factories import make_account, make_user

LOGIN = "/login"


def csrf_token(client: Client, path: str) -> str:
    client.get(path)
    return client.cookies[settings.CSRF_COOKIE_NAME].value


def test_login_page_renders_with_a_csrf_field(db):
    response = Client().get(LOGIN)
    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content


def test_login_rotates_the_session_id(user, password):
    client = Client()
    session = client.session  # an anonymous session exists before login (a fixation attempt)
    session["probe"] = "before-login"
    session.save()
    before = session.session_key
    response = client.post(LOGIN, {"email": user.email, "password": password})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard"
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert not SessionStore().exists(before)
    assert client.get("/dashboard").status_code == 200


def test_login_failure_shows_the_same_message_for_unknown_email(user):
    client = Client()
    wrong = client.post(LOGIN, {"email": user.email, "password": "not the right password"})
    unknown = client.post(LOGIN, {"email": "nobody@example.com", "password": "not the right password"})
    assert wrong.status_code == unknown.status_code == 200
    assert b"Invalid email or password." in wrong.content
    assert b"Invalid email or password." in unknown.content
    assert settings.SESSION_COOKIE_NAME not in client.cookies or not client.cookies[settings.SESSION_COOKIE_NAME].value


def test_login_honours_a_safe_next_only(user, password):
    response = Client().post(
        f"{LOGIN}?next=/dashboard", {"email": user.email, "password": password, "next": "/dashboard"}
    )
    assert response["Location"] == "/dashboard"
    response = Client().post(LOGIN, {"email": user.email, "password": password, "next": "https://evil.example/"})
    assert response["Location"] == "/dashboard"


def test_logout_ends_the_session(user):
    client = Client()
    client.force_login(user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    response = client.post("/logout")
    assert response.status_code == 302
    assert not SessionStore().exists(key)
    assert client.get("/dashboard").status_code == 302  # back to the login page


def test_logout_by_get_is_not_allowed(user):
    client = Client()
    client.force_login(user)
    assert client.get("/logout").status_code == 405
    assert client.get("/dashboard").status_code == 200


def test_anonymous_is_sent_to_login(db):
    response = Client().get("/dashboard")
    assert response.status_code == 302
    assert response["Location"] == "/login?next=/dashboard"


def test_register_page_signs_up_and_signs_in(db):
    client = Client()
    response = client.post(
        "/register", {"name": "Ravi", "email": "ravi@example.com", "password": "a long and unusual passphrase"}
    )
    assert response.status_code == 302
    assert client.get("/dashboard").status_code == 200


def test_register_page_shows_password_errors(db):
    response = Client().post("/register", {"name": "Ravi", "email": "ravi@example.com", "password": "password1234"})
    assert response.status_code == 200
    assert b"too common" in response.content


def test_dashboard_offers_create_then_shows_balance(user):
    client = Client()
    client.force_login(user)
    page = client.get("/dashboard").content.decode()
    assert "Create account" in page
    assert client.post("/account/open").status_code == 302
    Account.objects.filter(user=user).update(balance=150050)
    page = client.get("/dashboard").content.decode()
    assert "₹1,500.50" in page
    assert "ACTIVE" in page
    assert "Create account" not in page
    # A second attempt is a clear message, not an error page.
    response = client.post("/account/open", follow=True)
    assert "You already have an account." in response.content.decode()


# --- CSRF -----------------------------------------------------------------------------------
def test_login_without_csrf_token_is_rejected(user, password):
    client = Client(enforce_csrf_checks=True)
    assert client.post(LOGIN, {"email": user.email, "password": password}).status_code == 403
    token = csrf_token(client, LOGIN)
    response = client.post(LOGIN, {"email": user.email, "password": password, "csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_register_without_csrf_token_is_rejected(db):
    client = Client(enforce_csrf_checks=True)
    body = {"name": "Ravi", "email": "ravi@example.com", "password": "a long and unusual passphrase"}
    assert client.post("/register", body).status_code == 403


def test_logout_and_account_create_without_csrf_token_are_rejected(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/account/open").status_code == 403
    assert client.post("/logout").status_code == 403
    assert not Account.objects.filter(user=user).exists()
    assert client.get("/dashboard").status_code == 200  # still signed in
    token = csrf_token(client, "/dashboard")
    assert client.post("/account/open", {"csrfmiddlewaretoken": token}).status_code == 302
    assert Account.objects.filter(user=user).exists()


def test_frozen_owner_still_sees_the_dashboard(db):
    account = make_account(user=make_user(), status="FROZEN")
    client = Client()
    client.force_login(account.user)
    assert "FROZEN" in client.get("/dashboard").content.decode()
