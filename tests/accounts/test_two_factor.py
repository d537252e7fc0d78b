"""Two-factor sign-in (accounts.two_factor) through the real pages and API, on the embedded server.

Every sign-in here is a real one (password, then code): no force_login for the person signing in.
"""

import hashlib
import re
import time

import pyotp
import pytest
from django.test import Client

from accounts.models import RecoveryCode, Role, TotpDevice, User
from accounts.two_factor import SESSION_ENROL_SECRET
from ledger.models import AuditAction, AuditLog
from tests.accounts.conftest import ApiClient
from tests.factories import PASSWORD, enrol_totp, make_user, totp_code

CODE_PAGE = "/login/code"
ENROL_PAGE = "/account/two-factor/enrol"


@pytest.fixture
def staff():
    return make_user(email="staff@example.com", role=Role.ADMIN, name="Staff")


def password_step(user, client: Client | None = None, **extra) -> Client:
    client = client or Client(**extra)
    response = client.post("/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def wrong_code(secret: str) -> str:
    """Six digits that are no code of the accepted window (one step either side of now)."""
    totp = pyotp.TOTP(secret)
    valid = {totp.at(time.time() + offset) for offset in (-60, -30, 0, 30, 60)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in valid)


def device(user) -> TotpDevice:
    return TotpDevice.objects.get(user=user)


def enrol_through_the_page(client: Client) -> tuple[str, list[str]]:
    page = client.get(ENROL_PAGE)
    assert page.status_code == 200 and "<svg" in page.content.decode()
    secret = client.session[SESSION_ENROL_SECRET]
    # The key shown for typing is the same secret, in groups of four.
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in page.content.decode()
    answer = client.post(ENROL_PAGE, {"code": pyotp.TOTP(secret).now()})
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    codes = re.findall(r'data-testid="recovery-code">([A-Z0-9-]+)<', answer.content.decode())
    return secret, codes


def test_staff_without_a_device_is_sent_to_enrolment_before_any_staff_page(staff):
    client = password_step(staff)
    for path in ("/staff/users", "/staff/", "/dashboard", "/django-admin/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(CODE_PAGE), path
    assert client.get(CODE_PAGE)["Location"] == ENROL_PAGE

    client.get(ENROL_PAGE)
    wrong = client.post(ENROL_PAGE, {"code": wrong_code(client.session[SESSION_ENROL_SECRET])})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    assert not TotpDevice.objects.filter(user=staff).exists()  # nothing written until a code confirms it

    secret, codes = enrol_through_the_page(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    # Stored hashed only: no code appears in the database in clear.
    stored = set(RecoveryCode.objects.filter(user=staff).values_list("code_hash", flat=True))
    assert stored == {hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes}
    assert device(staff).secret == secret
    assert AuditLog.objects.filter(action=AuditAction.TWO_FACTOR_ENROLLED, user_id=str(staff.pk)).count() == 1
    assert client.get("/staff/users").status_code == 200
    # Shown once: the enrolment page now only says it is on.
    again = client.get(ENROL_PAGE)
    assert again.status_code == 302 and again["Location"] == "/account/two-factor"


def test_enrolled_staff_signs_in_with_a_code_and_a_wrong_one_is_refused_clearly(staff):
    secret = enrol_totp(staff)
    client = password_step(staff)
    assert client.get("/staff/users")["Location"] == f"{CODE_PAGE}?next=/staff/users"
    # The code page links nowhere else and polls nothing: those would only come back here.
    code_page = client.get(CODE_PAGE).content.decode()
    assert 'id="notification-poll"' not in code_page and 'href="/staff/users"' not in code_page

    wrong = client.post(CODE_PAGE, {"code": wrong_code(secret)})
    assert wrong.status_code == 400
    assert "That code is not right. Enter the 6-digit code your authenticator app shows now." in wrong.content.decode()
    assert client.get("/staff/users").status_code == 302

    right = client.post(CODE_PAGE, {"code": totp_code(secret), "next": "/staff/users"})
    assert right.status_code == 302 and right["Location"] == "/staff/users"
    assert client.get("/staff/users").status_code == 200
    failed = AuditLog.objects.filter(action=AuditAction.TWO_FACTOR_FAILED, user_id=str(staff.pk))
    assert [row.details["reason"] for row in failed] == ["wrong_code"]


def test_a_code_cannot_be_used_twice(staff):
    secret = enrol_totp(staff)
    code = totp_code(secret)
    first = password_step(staff)
    assert first.post(CODE_PAGE, {"code": code}).status_code == 302

    second = password_step(staff)  # another browser, the same code within its 30 seconds
    reused = second.post(CODE_PAGE, {"code": code})
    assert reused.status_code == 400 and "That code was already used" in reused.content.decode()
    assert second.get("/staff/users").status_code == 302
    # The next step's code still works.
    assert second.post(CODE_PAGE, {"code": totp_code(secret, after_step=device(staff).last_step)}).status_code == 302


def test_wrong_codes_are_limited_per_person_from_any_address(staff, settings):
    settings.AEGIS_RATELIMIT_SECOND_FACTOR = "3/15m"
    secret = enrol_totp(staff)
    wrong = wrong_code(secret)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        client = password_step(staff, REMOTE_ADDR=address)
        assert client.post(CODE_PAGE, {"code": wrong}).status_code == 400
    client = password_step(staff, REMOTE_ADDR="10.0.0.4")
    limited = client.post(CODE_PAGE, {"code": totp_code(secret)})  # even the right code, now
    assert limited.status_code == 429 and "Too many wrong codes" in limited.content.decode()
    assert client.get("/staff/users").status_code == 302


def test_recovery_codes_sign_in_once_each(staff):
    client = password_step(staff)
    _secret, codes = enrol_through_the_page(client)
    client.post("/logout")

    lost_phone = password_step(staff)
    used = lost_phone.post(CODE_PAGE, {"code": codes[0].lower()})  # typed in lower case: still that code
    assert used.status_code == 302 and lost_phone.get("/staff/users").status_code == 200
    assert RecoveryCode.objects.filter(user=staff, used_at=None).count() == 9
    assert AuditLog.objects.filter(action=AuditAction.TWO_FACTOR_RECOVERY_USED, user_id=str(staff.pk)).count() == 1

    again = password_step(staff)
    refused = again.post(CODE_PAGE, {"code": codes[0]})
    assert refused.status_code == 400 and "already used" in refused.content.decode()
    assert again.post(CODE_PAGE, {"code": codes[1]}).status_code == 302


def test_another_admin_resets_a_lost_device_with_their_password_and_it_is_audited(staff):
    enrol_totp(staff)
    colleague = make_user(email="colleague@example.com", role=Role.ADMIN)
    enrol_totp(colleague)
    victim_session = password_step(staff)
    victim_session.post(CODE_PAGE, {"code": totp_code(device(staff).secret)})
    assert victim_session.get("/staff/users").status_code == 200

    console = Client()
    console.force_login(colleague)
    reset = f"/staff/users/{staff.pk}/two-factor/reset"
    wrong = console.post(reset, {"password": "not my password at all"}, follow=True)
    assert "That password is not right." in wrong.content.decode()
    assert TotpDevice.objects.filter(user=staff).exists()

    done = console.post(reset, {"password": PASSWORD}, follow=True)
    assert "was reset" in done.content.decode()
    assert not TotpDevice.objects.filter(user=staff).exists() and not RecoveryCode.objects.filter(user=staff)
    entry = AuditLog.objects.get(action=AuditAction.TWO_FACTOR_RESET)
    assert entry.user_id == str(staff.pk) and entry.actor_id == str(colleague.pk)
    # Signed out everywhere, and enrols again at the next sign-in.
    assert victim_session.get("/staff/users")["Location"].startswith("/login")
    notice = victim_session.get("/login").content.decode()
    assert "An administrator reset your two-factor sign-in. Log in and set it up again." in notice
    assert password_step(staff).get(CODE_PAGE)["Location"] == ENROL_PAGE


def test_no_admin_resets_their_own_second_factor(staff):
    enrol_totp(staff)
    console = Client()
    console.force_login(staff)
    answer = console.post(f"/staff/users/{staff.pk}/two-factor/reset", {"password": PASSWORD}, follow=True)
    assert "Another administrator must reset your two-factor sign-in." in answer.content.decode()
    assert TotpDevice.objects.filter(user=staff).exists()
    assert not AuditLog.objects.filter(action=AuditAction.TWO_FACTOR_RESET).exists()


def test_the_api_issues_a_staff_token_only_with_the_code(staff):
    login = {"email": staff.email, "password": PASSWORD}
    not_enrolled = ApiClient().post("/api/auth/login", login)
    assert not_enrolled.status_code == 403 and not_enrolled.json()["code"] == "second_factor_enrolment_required"

    secret = enrol_totp(staff)
    without = ApiClient().post("/api/auth/login", login)
    assert without.status_code == 401 and without.json() == {
        "success": False,
        "code": "second_factor_required",
        "message": "This account signs in with a code from an authenticator app: send it as `otp`.",
    }
    assert "token" not in without.cookies
    wrong = ApiClient().post("/api/auth/login", login | {"otp": "12345x"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_second_factor"

    code = totp_code(secret)
    signed_in = ApiClient().post("/api/auth/login", login | {"otp": code})
    assert signed_in.status_code == 200 and signed_in.json()["token"]
    token = signed_in.json()["token"]
    assert ApiClient(token=token).get("/api/admin/stats").status_code == 200
    reused = ApiClient().post("/api/auth/login", login | {"otp": code})
    assert reused.status_code == 401 and reused.json()["code"] == "second_factor_reused"


def test_a_wrong_password_is_refused_before_any_code_is_considered(staff):
    enrol_totp(staff)
    answer = ApiClient().post("/api/auth/login", {"email": staff.email, "password": "wrong password 123", "otp": "1"})
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials"
    assert not AuditLog.objects.filter(action=AuditAction.TWO_FACTOR_FAILED).exists()


def test_customers_opt_in_from_the_settings_page_and_then_need_the_code():
    customer = make_user(email="asha@example.com")
    client = password_step(customer)
    assert client.get("/dashboard").status_code == 200  # no code asked before opting in
    settings_page = client.get("/account/two-factor").content.decode()
    assert 'href="/account/two-factor/enrol"' in settings_page
    assert ApiClient().post("/api/auth/login", {"email": customer.email, "password": PASSWORD}).status_code == 200

    secret, codes = enrol_through_the_page(client)
    assert len(codes) == 10 and client.get("/dashboard").status_code == 200
    client.post("/logout")

    again = password_step(customer)
    assert again.get("/dashboard")["Location"] == f"{CODE_PAGE}?next=/dashboard"
    code = totp_code(secret, after_step=device(customer).last_step)
    assert again.post(CODE_PAGE, {"code": code}).status_code == 302
    assert again.get("/dashboard").status_code == 200
    api = ApiClient().post("/api/auth/login", {"email": customer.email, "password": PASSWORD})
    assert api.status_code == 401 and api.json()["code"] == "second_factor_required"


def test_an_htmx_request_of_a_session_owing_its_code_is_redirected_whole(staff):
    enrol_totp(staff)
    client = password_step(staff)
    answer = client.get("/staff/users", headers={"HX-Request": "true"})
    assert answer.status_code == 200 and answer["HX-Redirect"] == CODE_PAGE and answer.content == b""


def test_the_session_id_changes_when_the_code_is_accepted(staff):
    secret = enrol_totp(staff)
    client = password_step(staff)
    before = client.cookies["sessionid"].value
    client.post(CODE_PAGE, {"code": totp_code(secret)})
    assert client.cookies["sessionid"].value != before
    assert User.objects.get(pk=staff.pk).is_admin
