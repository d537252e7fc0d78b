"""Two-factor sign-in: TOTP codes (RFC 6238, pyotp), recovery codes, and where a code is required.

Who needs a code: every administrator (staff), and any customer who opted in (has a device).
A browser session signs in with the password first (`accounts.views.login_page`) and is then
*pending*: `SecondFactorMiddleware` sends every page of a pending session to the code page
(`two-factor-verify`), or, for an administrator without a device yet, to enrolment; only
those pages and logout answer until the code is given. The JSON API issues a token to such
a user only with the code in the login request (`token_second_factor_check`): a token is never
half signed in.

Codes: a code of the current 30-second step or one either side (clock drift) is accepted, once:
the device keeps the newest accepted step (`TotpDevice.last_step`) and accepting is a
conditional update, so a code, or an older one, is refused the second time. Wrong codes count
per user against AEGIS_RATELIMIT_SECOND_FACTOR (over it: 429, until the window ends), whatever
address they come from, since whoever is typing them already has the password. Recovery codes
(ten, shown once at enrolment, stored as SHA-256) are single-use by the same kind of update.

A lost device: another administrator resets it (`two_factor_reset`, with their password checked
again by the view); the reset signs the person out everywhere and is audit-logged with the
actor, and the person enrols again at their next sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

import pyotp
import segno
from django.conf import settings
from django.db import IntegrityError, connections
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django_mongodb_backend.transaction import atomic

from accounts.models import RecoveryCode, TotpDevice, User
from accounts.ratelimits import Limit, client_ip, limit_reset, limits_state
from accounts.services import user_sessions_end
from aegis.errors import Conflict, NotAuthenticated, PermissionDenied, RateLimited
from aegis.observability import rate_limited
from ledger.models import AuditAction
from ledger.services import audit_append

ISSUER = "Aegis"
STEP_SECONDS = 30  # the authenticator apps' default; pyotp's too
DRIFT_STEPS = 1  # a code from the step before or after the current one still counts
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off paper
_RECOVERY_LENGTH = 10  # 10 characters of 32: 50 bits each, so a plain SHA-256 is enough

SESSION_PENDING = "aegis_2fa_pending"  # password given, code not yet
SESSION_VERIFIED = "aegis_2fa_verified"
SESSION_ENROL_SECRET = "aegis_2fa_enrol_secret"  # noqa: S105 (a session key; holds the secret until confirmed)

LIMIT_GROUP = "second-factor"


class InvalidCode(NotAuthenticated):
    code = "invalid_second_factor"
    message = "That code is not right. Enter the 6-digit code your authenticator app shows now."


class CodeAlreadyUsed(InvalidCode):
    code = "second_factor_reused"
    message = "That code was already used. Wait for the next code in your authenticator app."


class SecondFactorRequired(NotAuthenticated):
    code = "second_factor_required"
    message = "This account signs in with a code from an authenticator app: send it as `otp`."


class EnrolmentRequired(PermissionDenied):
    code = "second_factor_enrolment_required"
    message = "Set up two-factor sign-in in the browser first (log in at /login), then use the API."


class AlreadyEnrolled(Conflict):
    code = "second_factor_enrolled"
    message = "Two-factor sign-in is already set up for this account."


class ResetNotAllowed(PermissionDenied):
    code = "second_factor_reset_forbidden"
    message = "Another administrator must reset your two-factor sign-in."


class NothingToReset(Conflict):
    code = "second_factor_not_enrolled"
    message = "This person has no two-factor sign-in to reset."


# --- reads ------------------------------------------------------------------------------------
def device_for_user(*, user: User) -> TotpDevice | None:
    return TotpDevice.objects.filter(user=user).first()


def requires_second_factor(*, user: User) -> bool:
    """Staff always; a customer once they enrolled."""
    return user.is_admin or TotpDevice.objects.filter(user=user).exists()


def recovery_codes_left(*, user: User) -> int:
    # At most RECOVERY_CODE_COUNT documents per user, on the (user, code_hash) unique index.
    return RecoveryCode.objects.filter(user=user, used_at=None).count()


# --- enrolment ----------------------------------------------------------------------------------
def enrolment_secret(request: HttpRequest) -> str:
    """The secret being enrolled in this session: new on the first visit, the same until confirmed
    (a reload must not invalidate the QR code already scanned)."""
    secret = request.session.get(SESSION_ENROL_SECRET)
    if not isinstance(secret, str) or not secret:
        secret = pyotp.random_base32()  # 160 bits from `secrets`
        request.session[SESSION_ENROL_SECRET] = secret
    return secret


def provisioning_uri(*, user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_code_svg(*, uri: str) -> str:
    """The otpauth:// URI as an inline SVG QR code, drawn here (segno): the secret never leaves."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#0f172a", light="#ffffff")


def secret_for_typing(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def two_factor_enrol(request: HttpRequest, *, user: User, code: str) -> list[str]:
    """Confirm the session's enrolment secret with a first code; the recovery codes, in clear, once.

    The device, its recovery codes (hashed) and the audit entry are written in one transaction.
    """
    secret = request.session.get(SESSION_ENROL_SECRET)
    if not isinstance(secret, str) or not secret:
        raise InvalidCode("Your set-up expired. Scan the new QR code and enter its code.")
    _limit_check(request, user=user)
    step = _matching_step(secret, code)
    if step is None:
        _failure(request, user=user, reason="enrolment_code")
        raise InvalidCode()
    codes = [_recovery_code_new() for _ in range(RECOVERY_CODE_COUNT)]
    try:
        with atomic():
            TotpDevice.objects.create(user=user, secret=secret, last_step=step)
            RecoveryCode.objects.bulk_create(RecoveryCode(user=user, code_hash=_hash(c)) for c in codes)
            audit_append(
                connections["default"].session,
                action=AuditAction.TWO_FACTOR_ENROLLED,
                status="SUCCESS",
                user_id=str(user.pk),
                details={"ip": client_ip(request)},
            )
    except IntegrityError:
        raise AlreadyEnrolled() from None  # another tab confirmed first
    limit_reset(group=LIMIT_GROUP, key=_limit_key(user))
    request.session.pop(SESSION_ENROL_SECRET, None)
    session_mark_verified(request)
    return [_recovery_code_display(c) for c in codes]


# --- verification --------------------------------------------------------------------------------
def second_factor_verify(request: HttpRequest, *, user: User, code: str) -> str:
    """Accept a TOTP code or a recovery code for `user`: "totp" or "recovery"; else InvalidCode
    (CodeAlreadyUsed for a used one), RateLimited over the limit, EnrolmentRequired without a device."""
    device = device_for_user(user=user)
    if device is None:
        raise EnrolmentRequired()
    _limit_check(request, user=user)
    entered = (code or "").strip()
    if re.fullmatch(r"\d{6}", entered.replace(" ", "")):
        _totp_accept(request, device=device, code=entered.replace(" ", ""))
        kind = "totp"
    else:
        _recovery_accept(request, user=user, code=entered)
        kind = "recovery"
    limit_reset(group=LIMIT_GROUP, key=_limit_key(user))
    return kind


def token_second_factor_check(request: HttpRequest, *, user: User, code: str | None) -> None:
    """Before the API issues a token to `user` (password already checked): the code, if one is needed."""
    if device_for_user(user=user) is None:
        if user.is_admin:
            raise EnrolmentRequired()
        return  # a customer who did not opt in
    if not code:
        raise SecondFactorRequired()
    second_factor_verify(request, user=user, code=code)


def _totp_accept(request: HttpRequest, *, device: TotpDevice, code: str) -> None:
    step = _matching_step(device.secret, code)
    if step is None:
        _failure(request, user=device.user, reason="wrong_code")
        raise InvalidCode()
    # One conditional update: of two requests with the same code, one wins; an older code loses.
    taken = TotpDevice.objects.filter(pk=device.pk, last_step__lt=step).update(last_step=step)
    if not taken:
        _failure(request, user=device.user, reason="reused_code")
        raise CodeAlreadyUsed()


def _recovery_accept(request: HttpRequest, *, user: User, code: str) -> None:
    normalized = re.sub(r"[\s-]", "", code).upper()
    if len(normalized) != _RECOVERY_LENGTH:
        _failure(request, user=user, reason="wrong_code")
        raise InvalidCode("That is neither a 6-digit code nor a recovery code.")

    def use(session) -> int:
        used = RecoveryCode.objects.filter(user=user, code_hash=_hash(normalized), used_at=None).update(
            used_at=timezone.now()
        )
        if used:
            audit_append(
                session,
                action=AuditAction.TWO_FACTOR_RECOVERY_USED,
                status="SUCCESS",
                user_id=str(user.pk),
                details={"ip": client_ip(request), "left": recovery_codes_left(user=user)},
            )
        return used

    with atomic():
        used = use(connections["default"].session)
    if not used:
        _failure(request, user=user, reason="wrong_recovery_code")
        raise InvalidCode("That recovery code is not right, or it was already used.")


def _matching_step(secret: str, code: str) -> int | None:
    """The time step (within the drift) whose code is `code`, newest first; None if none."""
    code = (code or "").replace(" ", "")
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    now_step = int(time.time()) // STEP_SECONDS
    for step in range(now_step + DRIFT_STEPS, now_step - DRIFT_STEPS - 1, -1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


# --- the session ----------------------------------------------------------------------------
def session_after_password(request: HttpRequest, *, user: User) -> bool:
    """Right after the password: mark the session pending if `user` needs a code; True if so."""
    request.session.pop(SESSION_VERIFIED, None)
    needed = requires_second_factor(user=user)
    if needed:
        request.session[SESSION_PENDING] = True
    return needed


def session_mark_verified(request: HttpRequest) -> None:
    request.session.cycle_key()  # a new session id once the second factor is in (no fixation)
    request.session.pop(SESSION_PENDING, None)
    request.session[SESSION_VERIFIED] = True


def session_needs_code(request: HttpRequest) -> bool:
    """Without a query: a staff member's session, or one marked pending at login, not yet verified."""
    user = request.user
    if not user.is_authenticated or request.session.get(SESSION_VERIFIED):
        return False
    return user.is_admin or bool(request.session.get(SESSION_PENDING))


class SecondFactorMiddleware:
    """Every page of a session that still owes its code goes to the code page (or enrolment).

    After AuthenticationMiddleware. The API is left alone: it never reads the session's user
    (tokens only, and a token is issued only with the code). HTMX requests are sent with
    HX-Redirect, so a fragment never swaps the code page into a staff page.
    """

    ALLOWED_VIEWS = frozenset(
        {"accounts:two-factor-verify", "accounts:two-factor-enrol", "accounts:logout", "accounts:session-keepalive"}
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/") or not session_needs_code(request):
            return None
        if request.resolver_match and request.resolver_match.view_name in self.ALLOWED_VIEWS:
            # base.html then shows no navigation and starts no polls: each would only be sent back here.
            request.aegis_second_factor_owed = True
            return None
        target = reverse("accounts:two-factor-verify")
        if request.method == "GET" and not request.headers.get("HX-Request"):
            return redirect(f"{target}?next={request.get_full_path()}" if request.path_info != "/" else target)
        if request.headers.get("HX-Request"):
            response = HttpResponse(status=200)  # htmx follows HX-Redirect on a success (as adminpanel's do)
            response["HX-Redirect"] = target
            return response
        return redirect(target)  # a POST is not replayed after the code: the person starts it again


# --- the reset by another administrator -----------------------------------------------------
def two_factor_reset(*, user: User, actor: User, request_id: str = "") -> None:
    """Remove `user`'s device and recovery codes and sign them out everywhere; audited with `actor`.

    The actor must be another administrator (their password is checked again by the caller).
    """
    if not actor.is_admin or actor.pk == user.pk:
        raise ResetNotAllowed()
    if device_for_user(user=user) is None:
        raise NothingToReset()

    def write(session) -> None:
        TotpDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        user_sessions_end(session, user, "two_factor_reset")
        audit_append(
            session,
            action=AuditAction.TWO_FACTOR_RESET,
            status="SUCCESS",
            user_id=str(user.pk),
            actor_id=str(actor.pk),
            details={"request_id": request_id} if request_id else {},
        )

    with atomic():
        write(connections["default"].session)


# --- limits and helpers -----------------------------------------------------------------------
def _limit_key(user: User) -> str:
    return f"second-factor:{user.pk}"


def _limit(user: User) -> Limit:
    return Limit(LIMIT_GROUP, settings.AEGIS_RATELIMIT_SECOND_FACTOR)


def _limit_check(request: HttpRequest, *, user: User) -> None:
    """Refuse before checking any code once this user's wrong codes reached the limit."""
    limit = _limit(user)
    count, allowed, wait = limits_state(key=_limit_key(user), limits=[limit], increment=False)[LIMIT_GROUP]
    if count >= allowed:
        rate_limited(LIMIT_GROUP)
        _audit_failure(request, user=user, reason="rate_limited")
        raise RateLimited("Too many wrong codes. Try again in a few minutes.", retry_after=wait)


def _failure(request: HttpRequest, *, user: User, reason: str) -> None:
    limits_state(key=_limit_key(user), limits=[_limit(user)])
    _audit_failure(request, user=user, reason=reason)


def _audit_failure(request: HttpRequest, *, user: User, reason: str) -> None:
    audit_append(
        None,  # the entry is the whole write
        action=AuditAction.TWO_FACTOR_FAILED,
        status="FAILURE",
        user_id=str(user.pk),
        details={"ip": client_ip(request), "reason": reason},
    )


def _recovery_code_new() -> str:
    return "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))


def _recovery_code_display(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()
