"""Security at the HTTP edge: response headers, proxy trust, session lifetimes, unexpected errors.

- `SecurityHeadersMiddleware` (right after the request-log middleware, before Django's
  SecurityMiddleware) puts the clickjacking/sniffing/referrer headers on every response, pages,
  API, static files, redirects and errors alike, and drops a forwarded-protocol header
  (SECURE_PROXY_SSL_HEADER) that did not come from a trusted proxy, so a client talking to the
  app directly cannot claim HTTPS. `CSPMiddleware` (django-csp's, next) adds the
  Content-Security-Policy of settings.CONTENT_SECURITY_POLICY to the same responses.
- `SessionTimeoutMiddleware` (after the auth and message middlewares) ends a signed-in session after
  AEGIS_SESSION_IDLE_SECONDS without activity or AEGIS_SESSION_ABSOLUTE_SECONDS after sign-in,
  whichever comes first. Background polls (htmx `every`/`load` triggers, marked by
  static/js/aegis.js with `X-Aegis-Background: 1`) do not count as activity. What the user then
  sees (the login page saying why, HX-Redirect for htmx, the warning) is accounts.session_end.
- `UnhandledErrorMiddleware` (last) logs an unexpected exception with the request id and answers
  a generic 500: JSON on /api/, the self-contained 500.html elsewhere; never a traceback.

Trusted proxies: AEGIS_TRUSTED_PROXIES is a comma-separated list of IPs/CIDRs. Only a request
whose REMOTE_ADDR is in it may set the client address (AEGIS_CLIENT_IP_HEADER, see
accounts.ratelimits.client_ip) or the forwarded protocol.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from functools import lru_cache

from csp.constants import SELF, UNSAFE_INLINE
from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.defaults import server_error

logger = logging.getLogger("aegis.errors")
# What Django itself turns into 400/403/404 (django.core.handlers.exception.response_for_exception).
EXPECTED_EXCEPTIONS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)

# Swagger UI (/api/docs) applies an inline style while it renders (measured in Chromium: one
# violation under the strict policy), so that one page, and only it, allows inline *styles*.
# Scripts stay 'self' there too: static/api/docs.js starts it from a file.
CSP_DIRECTIVES = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
CSP_RELAXED_DIRECTIVES = {**CSP_DIRECTIVES, "style-src": [SELF, UNSAFE_INLINE]}
# django-csp 4.0 orders its config's directives by a set (a new order in every process); an empty
# config with the directives as `update` keeps the order settings declare.
CSP = build_policy(config={}, update=CSP_DIRECTIVES)
CSP_RELAXED_STYLES = build_policy(config={}, update=CSP_RELAXED_DIRECTIVES)

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"

SESSION_STARTED = "aegis_auth_at"
SESSION_SEEN = "aegis_seen_at"
# Write "last seen" at most this often (or a tenth of a short idle limit), so an active user does
# not cost a session write per request.
SEEN_RESOLUTION_SECONDS = 30
BACKGROUND_HEADER = "HTTP_X_AEGIS_BACKGROUND"


# --- trusted proxies --------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple:
    networks = []
    for item in spec.split(","):
        item = item.strip()
        if item:
            networks.append(ipaddress.ip_network(item, strict=False))
    return tuple(networks)


def trusted_networks() -> tuple:
    return _networks(settings.AEGIS_TRUSTED_PROXIES)


def is_trusted_proxy(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in trusted_networks())


# --- headers ----------------------------------------------------------------------------------
class CSPMiddleware(LibraryCSPMiddleware):
    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only:
            relaxed = request.path_info == "/api/docs" or request.path_info.startswith("/api/docs/")
            parts.config, parts.update = {}, CSP_RELAXED_DIRECTIVES if relaxed else CSP_DIRECTIVES
        return parts


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        proxy_ssl = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        if proxy_ssl and proxy_ssl[0] in request.META and not is_trusted_proxy(request.META.get("REMOTE_ADDR")):
            del request.META[proxy_ssl[0]]  # a direct client cannot claim it came in over HTTPS
        response = self.get_response(request)
        # Django's own middlewares set these on most responses; setdefault covers the rest (e.g.
        # a 429 answered before XFrameOptionsMiddleware runs).
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY or "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


# --- session lifetimes ------------------------------------------------------------------------
def session_mark_signed_in(session, now: float | None = None) -> None:
    """Start the absolute and idle clocks; called on every sign-in (and re-authentication)."""
    now = int(now if now is not None else time.time())
    session[SESSION_STARTED] = now
    session[SESSION_SEEN] = now


def session_expired(session, now: float) -> str | None:
    """'idle', 'absolute', or None while the session is within both limits."""
    started, seen = session.get(SESSION_STARTED), session.get(SESSION_SEEN)
    if not isinstance(started, int) or not isinstance(seen, int):
        return None
    if now - started > settings.AEGIS_SESSION_ABSOLUTE_SECONDS:
        return "absolute"
    if now - seen > settings.AEGIS_SESSION_IDLE_SECONDS:
        return "idle"
    return None


class SessionTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            now = time.time()
            if not isinstance(session.get(SESSION_STARTED), int) or not isinstance(session.get(SESSION_SEEN), int):
                session_mark_signed_in(session, now)  # e.g. a session from before this middleware
            reason = session_expired(session, now)
            if reason:
                session.flush()  # server-side delete + new key: the old cookie is dead
                request.user = AnonymousUser()
                request.aegis_session_expired = reason  # the login page says so (accounts.session_end)
            elif request.META.get(BACKGROUND_HEADER) != "1" and now - session[SESSION_SEEN] >= min(
                SEEN_RESOLUTION_SECONDS, settings.AEGIS_SESSION_IDLE_SECONDS // 10
            ):
                session[SESSION_SEEN] = int(now)
        return self.get_response(request)


# --- unexpected errors ------------------------------------------------------------------------
class UnhandledErrorMiddleware:
    """Log an unexpected view exception once, with the request id, and answer a generic 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        api = request.path_info.startswith("/api/")
        if isinstance(exception, EXPECTED_EXCEPTIONS) or (settings.DEBUG and not api):
            # Django's own 400/403/404 handling (aegis.api_errors); or development's debug page,
            # which an API client never gets: a traceback is no answer to parse.
            return None
        request_id = getattr(request, "request_id", "")
        logger.error(
            "Unhandled %s on %s %s (request_id=%s)",
            type(exception).__name__,
            request.method,
            request.path,
            request_id,
            exc_info=exception,
            extra={"request_id": request_id, "path": request.path, "method": request.method},
        )
        # What Django's own handler would signal (the test client re-raises from it).
        got_request_exception.send(sender=self.__class__, request=request)
        if api:
            body = {"success": False, "message": "Something went wrong on our side.", "code": "server_error"}
            if request_id:
                body["requestId"] = request_id
            return JsonResponse(body, status=500)
        return server_error(request)
