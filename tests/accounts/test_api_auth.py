"""Register and login over the JSON API: shapes, password policy, uniform login failures."""

import pytest
from django.contrib.auth.hashers import check_password, make_password

from accounts.models import User
from ledger.models import AuditLog
from tests.factories import make_user

REGISTER = "/api/auth/register"
LOGIN = "/api/auth/login"
EMOJI_PASSWORD = "".join(chr(0x1F400 + i) for i in range(64))  # 🐀 … 🐿, 4 UTF-8 bytes each


def register(api, **overrides):
    body = {"name": "Asha Rao", "email": "asha@example.com", "password": "a long and unusual passphrase"}
    body.update(overrides)
    return api.post(REGISTER, body)


def test_register_returns_user_and_token(api):
    response = register(api)
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    user = User.objects.get(email="asha@example.com")
    assert body["user"] == {"_id": str(user.pk), "name": "Asha Rao", "email": "asha@example.com", "role": "USER"}
    assert body["token"]
    assert api.get("/api/accounts", HTTP_AUTHORIZATION=f"Bearer {body['token']}").status_code == 200


def test_register_twice_with_the_same_email_is_409(api):
    register(api)
    response = register(api, email="ASHA@example.com")
    assert response.status_code == 409
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("password", "why"),
    [("short pass1", "too short"), ("x" * 1025, "too long"), ("password1234", "common")],
)
def test_register_refuses_weak_passwords(api, password, why):
    response = register(api, password=password)
    assert response.status_code == 400, why
    assert response.json()["code"] == "validation_error"
    assert response.json()["field"] == "password"
    assert not User.objects.exists()


def test_passwords_of_12_and_1024_characters_are_accepted(api):
    assert register(api, email="a@example.com", password="qz7!vr2#kp9m").status_code == 201
    assert register(api, email="b@example.com", password="q7" * 512).status_code == 201


def test_64_emoji_password_registers_and_logs_in(api, production_hashers):
    assert len(EMOJI_PASSWORD) == 64
    assert register(api, password=EMOJI_PASSWORD).status_code == 201
    assert api.post(LOGIN, {"email": "asha@example.com", "password": EMOJI_PASSWORD}).status_code == 200
    assert api.post(LOGIN, {"email": "asha@example.com", "password": EMOJI_PASSWORD[:-1]}).status_code == 401


def test_long_passwords_differing_after_byte_72_do_not_match(production_hashers):
    first = "p" * 100 + "A"
    second = "p" * 100 + "B"
    encoded = make_password(first)
    assert encoded.startswith("bcrypt_sha256$")
    assert check_password(first, encoded)
    assert not check_password(second, encoded)


def test_malformed_json_and_wrong_content_type_are_400(api):
    response = api.generic("POST", REGISTER, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    response = api.generic("POST", REGISTER, "name=a", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_content_type"
    response = api.generic("POST", REGISTER, "[1, 2]", content_type="application/json")
    assert response.status_code == 400


def test_login_returns_user_and_token(api, user, password):
    response = api.post(LOGIN, {"email": user.email.upper(), "password": password})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["user"]["_id"] == str(user.pk)
    assert body["user"]["role"] == "USER"
    assert body["token"]


def test_login_failure_looks_the_same_for_unknown_email_and_wrong_password(api, user):
    wrong_password = api.post(LOGIN, {"email": user.email, "password": "not the right password"})
    unknown_email = api.post(LOGIN, {"email": "nobody@example.com", "password": "not the right password"})
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert (
        wrong_password.json()
        == unknown_email.json()
        == {
            "success": False,
            "message": "Invalid email or password.",
            "code": "invalid_credentials",
        }
    )


def test_login_failures_are_audit_logged(api, user):
    api.post(LOGIN, {"email": user.email, "password": "not the right password"})
    api.post(LOGIN, {"email": "nobody@example.com", "password": "not the right password"})
    failures = AuditLog.objects.filter(action="LOGIN_FAILED").order_by("created_at")
    assert [f.details["email"] for f in failures] == [user.email, "nobody@example.com"]
    assert all(f.status == "FAILURE" for f in failures)


def test_inactive_user_cannot_log_in(api, password):
    user = make_user(is_active=False)
    response = api.post(LOGIN, {"email": user.email, "password": password})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
