"""Authentication: API tokens (JWT), their revocation, and the one login check pages and API share.

Tokens are HS256 JWTs signed with settings.JWT_SECRET, carrying `sub` (user id), `iat`, `exp`
(3 days), `jti` and `epoch` (the user's `auth_epoch` when it was issued). Decoding pins the
algorithm and requires every one of those claims, so `alg: none`, RS256/HS256 confusion, a
wrong key, a tampered payload or an expired token all fail the same way: `InvalidToken` (401).
Logout puts the `jti` on the blacklist (a TTL collection), after which the token answers 401
too; a password change or a freeze bumps the user's `auth_epoch`, which ends every token (and
session) issued before it on its next request.

Failed logins are limited twice (`login_failures_check`, see docs/rate-limits.md): per email
*and client address* (AEGIS_RATELIMIT_LOGIN, 10 per 15 minutes), so one address cannot keep
guessing; and per email across all addresses (AEGIS_RATELIMIT_LOGIN_ACCOUNT, 100 per 15
minutes), a ceiling over which only addresses with fewer than OVER_CEILING_ALLOWANCE failures
may still try. A stranger's wrong guesses therefore never lock the owner out of their own
address. Every password check on request input holds a slot (`password_check_slot`).

Re-authentication ("sudo mode"): `reauth_confirm` checks the signed-in user's password again
and stamps the session; `reauth_is_fresh` says whether that happened within
AEGIS_REAUTH_SECONDS. Sensitive staff actions (freeze/unfreeze, funding, reversal decisions)
require it. A page sign-in is a password typed just now, so it stamps the session too
(`reauth_stamp_login`): a staff member who funds an account seconds after logging in is not
asked for the same password again; after AEGIS_REAUTH_SECONDS they are.

A token is read from `Authorization: Bearer <token>` first, else from the HttpOnly cookie
`settings.JWT_COOKIE_NAME` that login sets.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.contrib.auth import authenticate
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse

from accounts.models import BlacklistedToken, User
from accounts.ratelimits import Limit, PasswordChecksBusy, client_ip, limit_reset, limits_state, password_check_slot
from accounts.selectors import user_for_token
from aegis.errors import NotAuthenticated, RateLimited
from aegis.observability import rate_limited
from ledger.models import AuditAction
from ledger.services import audit_append

REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "epoch"]
REAUTH_SESSION_KEY = "aegis_reauth_at"


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    message = "Your session is not valid. Log in again."


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    message = "Invalid email or password."


# --- tokens -----------------------------------------------------------------------------------
def token_issue(*, user: User, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    payload = {
        "sub": str(user.pk),
        "iat": now,
        "exp": now + timedelta(seconds=settings.JWT_LIFETIME_SECONDS),
        "jti": uuid.uuid4().hex,
        "epoch": user.auth_epoch,
    }
    return jwt.encode(payload, settings.JWT_SECRET, algorithm=settings.JWT_ALGORITHM)


def token_decode(token: str) -> dict:
    """The verified claims of `token`, or InvalidToken. Does not consult the blacklist."""
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SECRET,
            algorithms=[settings.JWT_ALGORITHM],  # pinned: the header's `alg` is never trusted
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError:
        raise InvalidToken() from None
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise InvalidToken()
    return claims


def token_revoke(*, claims: dict) -> None:
    """Blacklist a token by its jti; revoking twice is harmless."""
    try:
        BlacklistedToken.objects.create(jti=claims["jti"])
    except IntegrityError:
        pass  # already revoked (a concurrent logout with the same token)


def token_user(token: str) -> tuple[User, dict]:
    """The active user a token belongs to, with its claims; InvalidToken otherwise."""
    claims = token_decode(token)
    user = user_for_token(user_id=claims["sub"], jti=claims["jti"])
    if user is None or claims["epoch"] != user.auth_epoch:
        raise InvalidToken()  # revoked, unknown user, or issued before a password change / freeze
    return user, claims


def request_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise InvalidToken()  # an Authorization header we cannot use is not "anonymous"
    return request.COOKIES.get(settings.JWT_COOKIE_NAME) or None


def authenticate_api(request: HttpRequest) -> tuple[User | None, dict | None]:
    """(user, claims) from the request's token; (None, None) when it carries none."""
    token = request_token(request)
    if token is None:
        return None, None
    return token_user(token)


def token_cookie_set(response: HttpResponse, token: str) -> None:
    response.set_cookie(
        settings.JWT_COOKIE_NAME,
        token,
        max_age=settings.JWT_LIFETIME_SECONDS,
        httponly=True,
        secure=settings.JWT_COOKIE_SECURE,
        samesite=settings.JWT_COOKIE_SAMESITE,
        path="/",
    )


def token_cookie_clear(response: HttpResponse) -> None:
    response.delete_cookie(settings.JWT_COOKIE_NAME, path="/", samesite=settings.JWT_COOKIE_SAMESITE)


# --- failed-login limits -------------------------------------------------------------------------
# Over the per-account ceiling, an address may still fail this often: the owner who mistyped
# once still gets in, while a guesser spread over N addresses gains at most 2 N more guesses.
OVER_CEILING_ALLOWANCE = 2


def _client_key(email: str, ip: str) -> str:
    # Hashed: an email may hold any character, so no separator could keep pairs apart.
    return "login:" + hashlib.sha256(json.dumps([email, ip]).encode("utf-8", "surrogatepass")).hexdigest()


def _login_limits() -> tuple[Limit, Limit]:
    return (
        Limit("login-address", settings.AEGIS_RATELIMIT_LOGIN),
        Limit("login-account", settings.AEGIS_RATELIMIT_LOGIN_ACCOUNT),
    )


def login_failures_check(request: HttpRequest, *, email: str) -> None:
    """RateLimited (its `params["limit"]` "address" or "account") if this client may not try a
    password for `email` now. Reads only; the same work whether or not the email exists."""
    per_client, per_account = _login_limits()
    ip = client_ip(request)
    state = limits_state(key=_client_key(email, ip), limits=[per_client], increment=False)
    failed, allowed, wait = state[per_client.group]
    if failed >= allowed:
        rate_limited(per_client.group)
        raise RateLimited(retry_after=wait, limit="address")
    total, ceiling, total_wait = limits_state(key=email, limits=[per_account], increment=False)[per_account.group]
    if total >= ceiling and failed >= OVER_CEILING_ALLOWANCE:
        rate_limited(per_account.group)
        # Allowed again when either count starts over, whichever comes first.
        raise RateLimited(retry_after=min(wait, total_wait), limit="account")


def login_failure_record(request: HttpRequest, *, email: str) -> None:
    """Count one wrong password for `email` from this client, on both limits."""
    per_client, per_account = _login_limits()
    limits_state(key=_client_key(email, client_ip(request)), limits=[per_client])
    limits_state(key=email, limits=[per_account])


def login_failures_forget(request: HttpRequest, *, email: str) -> None:
    """After a right password: this client's earlier typos no longer count against it."""
    limit_reset(group="login-address", key=_client_key(email, client_ip(request)))


# --- login ------------------------------------------------------------------------------------
def login_attempt(request: HttpRequest, *, email: str, password: str) -> User:
    """Check credentials for pages and API alike; InvalidCredentials or RateLimited otherwise.

    A failure answers the same message and status whether or not the email exists (Django's
    ModelBackend runs the default hasher once for an unknown email, so timing matches:
    tests/security/test_login_enumeration.py measures it), is audit-logged as LOGIN_FAILED,
    and counts against the failed-login limits (`login_failures_check`). A client over them is
    refused before the password is checked, so it learns nothing more, existing email or not;
    so is any login while every password-check slot is busy (PasswordChecksBusy, 429).
    """
    email = (email or "").strip().lower()
    ip = client_ip(request)

    def refused(reason: str, **details) -> None:
        audit_append(
            None,  # the entry is the whole write: no transaction to join
            action=AuditAction.LOGIN_FAILED,
            status="FAILURE",
            details={"email": email, "ip": ip, "reason": reason, **details},
        )

    try:
        # The slot first: while the machine is busy a login costs no more than this flock.
        with password_check_slot():
            login_failures_check(request, email=email)
            user = authenticate(request, email=email, password=password) if email and password else None
    except PasswordChecksBusy:
        raise  # not a failed login: no password was tried (the metric and request log count it)
    except RateLimited as err:
        refused("rate_limited", limit=err.params.get("limit"))
        raise
    if user is None:
        refused("invalid_credentials")
        login_failure_record(request, email=email)
        raise InvalidCredentials()
    login_failures_forget(request, email=email)
    audit_append(None, action=AuditAction.LOGIN_SUCCESS, status="SUCCESS", user_id=str(user.pk), details={"ip": ip})
    return user


# --- re-authentication ------------------------------------------------------------------------
def reauth_is_fresh(request: HttpRequest) -> bool:
    stamped = request.session.get(REAUTH_SESSION_KEY)
    return isinstance(stamped, int) and 0 <= time.time() - stamped <= settings.AEGIS_REAUTH_SECONDS


def _reauth_stamp(request: HttpRequest) -> None:
    request.session[REAUTH_SESSION_KEY] = int(time.time())


def reauth_confirm(request: HttpRequest, *, password: str) -> None:
    """Check the signed-in user's password again and stamp the session (`password_confirm`)."""
    password_confirm(request, password=password)
    _reauth_stamp(request)


def reauth_stamp_login(request: HttpRequest) -> None:
    """A page sign-in that just checked the password (`login_attempt`) counts as a confirmation
    for AEGIS_REAUTH_SECONDS. Called once the session is the signed-in one (after auth.login), so
    only a session that really typed the password is stamped: `force_login`, a session restored
    by the timeout middleware or an API token never is."""
    _reauth_stamp(request)


def password_confirm(request: HttpRequest, *, password: str) -> None:
    """Check the signed-in user's password again; InvalidCredentials or RateLimited otherwise.

    Failures count against the same limits as logins (`login_failures_check`), so a stolen
    session or token cannot be used to guess the password; the check holds a password-check
    slot. The API confirms each sensitive request this way (a token has no session to stamp).
    """
    user = request.user
    with password_check_slot():
        login_failures_check(request, email=user.email)
        right = bool(password) and user.check_password(password)
    if not right:
        audit_append(
            None,  # the entry is the whole write: no transaction to join
            action=AuditAction.LOGIN_FAILED,
            status="FAILURE",
            user_id=str(user.pk),
            details={"email": user.email, "ip": client_ip(request), "reason": "reauth_failed"},
        )
        login_failure_record(request, email=user.email)
        raise InvalidCredentials("That password is not right.")
    login_failures_forget(request, email=user.email)


def reauth_clear(request: HttpRequest) -> None:
    request.session.pop(REAUTH_SESSION_KEY, None)
