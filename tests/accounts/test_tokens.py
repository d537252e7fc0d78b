"""API tokens: forged, expired, wrong-algorithm or tampered tokens answer 401; logout revokes."""

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings

from accounts.auth import token_issue
from accounts.models import BlacklistedToken
from tests.accounts.conftest import ApiClient
from tests.factories import make_user

ACCOUNTS = "/api/accounts"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(user, **overrides):
    now = datetime.now(UTC)
    claims = {"sub": str(user.pk), "iat": now, "exp": now + timedelta(days=3), "jti": "j" * 32}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def assert_401(token):
    response = ApiClient(token=token).get(ACCOUNTS)
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert response.json()["code"] == "invalid_token"


@pytest.fixture
def victim(db):
    return make_user()


def test_a_valid_token_works(victim):
    response = ApiClient(token=token_issue(user=victim)).get(ACCOUNTS)
    assert response.status_code == 200
    assert response.json() == {"success": True, "accounts": []}


def test_issued_token_is_hs256_with_required_claims(victim):
    token = token_issue(user=victim)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(victim.pk)
    assert claims["exp"] - claims["iat"] == 3 * 24 * 3600
    assert claims["jti"]


def test_token_signed_with_another_key_is_rejected(victim):
    assert_401(jwt.encode(claims_for(victim), "a-different-secret-of-enough-length-0123456789", algorithm="HS256"))


def test_alg_none_token_is_rejected(victim):
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": str(victim.pk), "iat": 1, "exp": 4_000_000_000, "jti": "x"}).encode())
    assert_401(f"{header}.{body}.")


def test_rs256_token_is_rejected(victim):
    # An RS256 header: the algorithm is pinned to HS256, whatever key would verify it.
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": str(victim.pk), "iat": 1, "exp": 4_000_000_000, "jti": "x"}).encode())
    assert_401(f"{header}.{body}.{b64(b'not-a-real-signature')}")


def test_hs_rs_confusion_token_is_rejected(victim):
    # The classic confusion attack: HS256 signed with a public key an attacker can read.
    public_key = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": str(victim.pk), "iat": 1, "exp": 4_000_000_000, "jti": "x"}).encode())
    import hashlib
    import hmac

    signature = hmac.new(public_key.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert_401(f"{header}.{body}.{b64(signature)}")


def test_expired_token_is_rejected(victim):
    past = datetime.now(UTC) - timedelta(days=4)
    token = jwt.encode(
        claims_for(victim, iat=past, exp=past + timedelta(days=3)), settings.JWT_SECRET, algorithm="HS256"
    )
    assert_401(token)


def test_tampered_payload_is_rejected(victim):
    other = make_user()
    header, _, signature = token_issue(user=victim).split(".")
    forged_body = b64(json.dumps(claims_for(other, iat=1, exp=4_000_000_000)).encode())
    assert_401(f"{header}.{forged_body}.{signature}")


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti"])
def test_token_missing_a_required_claim_is_rejected(victim, missing):
    assert_401(jwt.encode(claims_for(victim, **{missing: None}), settings.JWT_SECRET, algorithm="HS256"))


def test_token_for_unknown_or_malformed_subject_is_rejected(victim):
    assert_401(jwt.encode(claims_for(victim, sub="000000000000000000000000"), settings.JWT_SECRET, algorithm="HS256"))
    assert_401(jwt.encode(claims_for(victim, sub="not-an-id"), settings.JWT_SECRET, algorithm="HS256"))


def test_garbage_and_wrong_scheme_are_rejected(victim):
    assert_401("not.a.jwt")
    response = ApiClient(HTTP_AUTHORIZATION=f"Basic {token_issue(user=victim)}").get(ACCOUNTS)
    assert response.status_code == 401


def test_no_token_is_401_not_authenticated(db):
    response = ApiClient().get(ACCOUNTS)
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": "Authentication required.", "code": "not_authenticated"}


def test_logout_revokes_the_token(victim):
    token = token_issue(user=victim)
    client = ApiClient(token=token)
    assert client.get(ACCOUNTS).status_code == 200
    response = client.post("/api/auth/logout")
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert response.cookies[settings.JWT_COOKIE_NAME].value == ""  # cookie cleared
    jti = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])["jti"]
    assert BlacklistedToken.objects.filter(jti=jti).exists()
    assert_401(token)
    assert client.post("/api/auth/logout").status_code == 401
    # A fresh login gets a fresh token that works.
    assert ApiClient(token=token_issue(user=victim)).get(ACCOUNTS).status_code == 200


def test_token_cookie_authenticates_and_is_httponly(victim, password):
    client = ApiClient()
    response = client.post("/api/auth/login", {"email": victim.email, "password": password})
    assert response.status_code == 200
    cookie = response.cookies[settings.JWT_COOKIE_NAME]
    assert cookie.value == response.json()["token"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert client.get(ACCOUNTS).status_code == 200  # the cookie alone authenticates
    client.post("/api/auth/logout")
    client.cookies[settings.JWT_COOKIE_NAME] = response.json()["token"]
    assert client.get(ACCOUNTS).status_code == 401  # revoked, even via the cookie


def test_session_cookie_does_not_authenticate_the_api(victim):
    client = ApiClient()
    client.force_login(victim)
    assert client.get(ACCOUNTS).status_code == 401


def test_token_cookie_is_secure_in_production(victim, password):
    from django.test import override_settings

    with override_settings(JWT_COOKIE_SECURE=True):
        response = ApiClient().post("/api/auth/login", {"email": victim.email, "password": password})
    cookie = response.cookies[settings.JWT_COOKIE_NAME]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"


def test_user_for_token_joins_the_blacklist_by_jti(db):
    import uuid

    from accounts.models import BlacklistedToken
    from accounts.selectors import user_for_token
    from tests.factories import make_user

    user = make_user()
    BlacklistedToken.objects.bulk_create(BlacklistedToken(jti=uuid.uuid4().hex) for _ in range(500))
    BlacklistedToken.objects.create(jti="revoked-one")
    BlacklistedToken.objects.create(jti="$email")  # a value, never an expression
    assert user_for_token(user_id=str(user.pk), jti="live-one") == user
    assert user_for_token(user_id=str(user.pk), jti="revoked-one") is None
    assert user_for_token(user_id=str(user.pk), jti="$email") is None
    found = user_for_token(user_id=str(user.pk), jti="live-one")
    user.refresh_from_db()  # as stored: MongoDB keeps milliseconds
    assert (found.email, found.auth_epoch, found.date_joined) == (user.email, user.auth_epoch, user.date_joined)
    assert user_for_token(user_id="not-an-id", jti="live-one") is None
    assert user_for_token(user_id="0123456789abcdef01234567", jti="live-one") is None
    user.is_active = False
    user.save()
    assert user_for_token(user_id=str(user.pk), jti="live-one") is None
