"""How a signed-in session ends, as the browser sees it: the login page says why, htmx requests
navigate the whole window there, and pages know how long the session has left.

`SessionEndMiddleware` runs right after `aegis.security.SessionTimeoutMiddleware`:

- It records why a session ended, in the anonymous session that follows it (`SESSION_ENDED`),
  for the login page to say once: idle or absolute limit (SessionTimeoutMiddleware flushed it),
  or Django's auth refused it. Django's `get_user` flushes a session whose auth hash no longer
  matches, which is what a bump of the user's `auth_epoch` does (accounts.services.
  user_sign_out_everywhere); the latest SIGNED_OUT_EVERYWHERE audit entry after the session
  began tells a freeze from a password change. Only whoever holds that session cookie sees it,
  and it names no account. Logout records "logout" the same way (accounts.views.logout_page).
- It answers an htmx request that ends in a redirect to the login page with `HX-Redirect` (200,
  empty body), so htmx loads the login page in the window instead of swapping it into a card;
  `next` is the page the user was on (HX-Current-URL, same origin only), not the fragment.
- It tells pages how long the session has left: `request.aegis_session_idle` /
  `request.aegis_session_left` for base.html's data attributes, and the `X-Aegis-Session-Idle` /
  `X-Aegis-Session-Left` headers (seconds) on every response of a live session, so
  static/js/aegis.js can warn before the idle limit, including after htmx requests and polls.

/api/ is left alone: it authenticates by token, and its latency is not worth a session lookup.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from accounts.models import User
from aegis.security import SESSION_SEEN, SESSION_STARTED
from ledger.models import AuditAction, AuditLog

SESSION_ENDED = "aegis_ended"  # {"reason": ..., "at": epoch s}
# A notice older than this is no longer news (and tells a later user of the browser nothing).
ENDED_NOTICE_SECONDS = 60 * 60
ENDED_MESSAGES = {
    "idle": "You were signed out after a period of inactivity. Log in again.",
    "absolute": "Your session reached its time limit. Log in again.",
    "frozen": "Your account was frozen, so you were signed out. Contact us if you did not expect this.",
    "password": "Your password was changed, so you were signed out on this device. Log in with the new password.",
    "elsewhere": "You were signed out on another device. Log in again.",
    "two_factor": "An administrator reset your two-factor sign-in. Log in and set it up again.",
    "ended": "Your session has ended. Log in again.",
    "logout": "You signed out.",
}
# accounts.services.user_sign_out_everywhere(reason=...) -> the notice
SIGN_OUT_REASONS = {"account_frozen": "frozen", "password_changed": "password", "two_factor_reset": "two_factor"}
IDLE_HEADER = "X-Aegis-Session-Idle"
LEFT_HEADER = "X-Aegis-Session-Left"
WARN_SECONDS = 60
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def session_end_record(session, reason: str) -> None:
    session[SESSION_ENDED] = {"reason": reason, "at": int(time.time())}


def session_end_notice(session) -> str | None:
    """The login page's one-time notice of why the last session ended (and forget it)."""
    ended = session.pop(SESSION_ENDED, None)
    if not isinstance(ended, dict) or not isinstance(ended.get("at"), int):
        return None
    if time.time() - ended["at"] > ENDED_NOTICE_SECONDS:
        return None
    return ENDED_MESSAGES.get(ended.get("reason"))


def session_touch(session) -> None:
    """Activity the user asked for ("Stay signed in"): the idle clock restarts now."""
    session[SESSION_SEEN] = int(time.time())


def session_time_left(session, now: float | None = None) -> tuple[int, int] | None:
    """(seconds until the idle limit, seconds until the absolute limit) of a stamped session."""
    started, seen = session.get(SESSION_STARTED), session.get(SESSION_SEEN)
    if not isinstance(started, int) or not isinstance(seen, int):
        return None
    now = time.time() if now is None else now
    idle = settings.AEGIS_SESSION_IDLE_SECONDS - (now - seen)
    left = settings.AEGIS_SESSION_ABSOLUTE_SECONDS - (now - started)
    # Rounded up: a page counting down from these never reaches zero before the server does.
    return max(0, math.ceil(idle)), max(0, math.ceil(left))


def warn_seconds() -> int:
    """How long before the idle limit pages warn: a minute, or half of a shorter limit."""
    return max(1, min(WARN_SECONDS, settings.AEGIS_SESSION_IDLE_SECONDS // 2))


def _refused_reason(user_id, started) -> str:
    """Why Django's auth refused a session of `user_id` (read only when that happens)."""
    try:
        user = User.objects.filter(pk=user_id).first()
    except (TypeError, ValueError, ValidationError):
        user = None
    if user is None or not user.is_active:
        return "ended"
    entries = AuditLog.objects.filter(action=AuditAction.SIGNED_OUT_EVERYWHERE, user_id=str(user.pk))
    if isinstance(started, int):  # an older sign-out did not end this session
        entries = entries.filter(created_at__gte=datetime.fromtimestamp(started, UTC))
    details = entries.order_by("-created_at").values_list("details", flat=True).first()
    if details is None:
        return "ended"  # e.g. a password set in the Django admin, or a rotated SECRET_KEY
    reason = details.get("reason") if isinstance(details, dict) else None
    return SIGN_OUT_REASONS.get(reason, "elsewhere")


def _is_login_redirect(response: HttpResponse) -> bool:
    if response.status_code not in REDIRECT_STATUSES:
        return False
    location = urlsplit(response.get("Location", ""))
    return not location.netloc and location.path == resolve_url(settings.LOGIN_URL)


def _htmx_login_redirect(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    target = response["Location"]
    current = HtmxDetails(request).current_url_abs_path  # None unless same origin
    if current and urlsplit(current).path != resolve_url(settings.LOGIN_URL):
        target = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': current}, safe='/')}"
    redirect = HttpResponseClientRedirect(target)
    for key, morsel in response.cookies.items():
        redirect.cookies[key] = morsel
    redirect["Cache-Control"] = "no-store"
    patch_vary_headers(redirect, ("HX-Request",))
    return redirect


class SessionEndMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        page = not request.path_info.startswith("/api/")
        if session is not None:
            self._note_end(request, session, check_auth=page)
        if session is not None and page:
            left = session_time_left(session) if SESSION_KEY in session else None
            request.aegis_session_idle, request.aegis_session_left = left or (None, None)
            request.aegis_session_warn = warn_seconds()
        response = self.get_response(request)
        if session is not None and page and SESSION_KEY in session:
            left = session_time_left(session)  # after the view: "Stay signed in" restarted the clock
            if left is not None:
                response[IDLE_HEADER], response[LEFT_HEADER] = str(left[0]), str(left[1])
        if request.headers.get("HX-Request") == "true" and _is_login_redirect(response):
            response = _htmx_login_redirect(request, response)
        return response

    @staticmethod
    def _note_end(request: HttpRequest, session, *, check_auth: bool) -> None:
        expired = getattr(request, "aegis_session_expired", None)
        if expired:
            session_end_record(session, expired)
            return
        if not check_auth or SESSION_KEY not in session:
            return
        user_id, started = session[SESSION_KEY], session.get(SESSION_STARTED)
        if request.user.is_authenticated:  # Django's get_user checks the auth hash here
            return
        reason = _refused_reason(user_id, started)
        if SESSION_KEY in session:  # refused without a flush (an inactive or deleted user): end it
            session.flush()
        session_end_record(session, reason)
