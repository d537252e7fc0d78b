"""A fresh login counts as the password confirmation (issue 19): a staff member who signed in
through the login page funds an account without typing the password again, for
AEGIS_REAUTH_SECONDS; after that (or in a session that never typed it) the form asks."""

from django.test import Client

from accounts.auth import REAUTH_SESSION_KEY
from tests.factories import PASSWORD, enrol_totp, totp_code
from tests.pages.conftest import client_for
from transfers.models import Transaction


def _signed_in(user) -> Client:
    """The whole staff sign-in: the password on the login page, then the two-factor code."""
    secret = enrol_totp(user)
    client = Client()
    response = client.post("/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.post("/login/code", {"code": totp_code(secret)}).status_code == 302
    return client


def test_funding_right_after_login_does_not_ask_for_the_password(staff, sender, bootstrap):
    client = _signed_in(staff)
    assert 'name="password"' not in client.get("/staff/fund").content.decode()
    form = {"to_account": str(sender.pk), "amount": "100", "idempotency_key": "fresh-1"}
    assert client.post("/staff/fund", form).status_code == 302
    assert Transaction.objects.get(idempotency_key="fresh-1").status == "COMPLETED"


def test_the_login_window_closes_after_the_reauth_seconds(staff, sender, bootstrap, settings):
    client = _signed_in(staff)
    session = client.session
    session[REAUTH_SESSION_KEY] -= settings.AEGIS_REAUTH_SECONDS + 1
    session.save()
    form = {"to_account": str(sender.pk), "amount": "100", "idempotency_key": "fresh-2"}
    assert "Confirm with your password" in client.post("/staff/fund", form).content.decode()
    assert not Transaction.objects.filter(idempotency_key="fresh-2").exists()


def test_a_session_that_never_typed_the_password_is_asked(staff, sender, bootstrap):
    client = client_for(staff)  # force_login: no password was typed
    client.get("/staff/users")  # the timeout middleware starts its clocks: still no confirmation
    assert REAUTH_SESSION_KEY not in client.session
    assert 'name="password"' in client.get("/staff/fund").content.decode()


def test_a_failed_login_stamps_nothing(staff):
    client = Client()
    assert client.post("/login", {"email": staff.email, "password": "wrong password here"}).status_code == 200
    assert REAUTH_SESSION_KEY not in client.session
