"""Route policies: who may call a route, with which methods, under which rate limit.

Every route in Aegis declares its policy with the `policy` decorator; the route-matrix test
(`tests/test_route_policy_matrix.py`) walks the URL configuration, fails for any route without
one, and checks each route against its declared policy for every kind of caller.

Access levels:

- ``PUBLIC``  anyone, signed in or not (landing, login, register, health).
- ``USER``    any authenticated, active user (system user and admins included).
- ``ADMIN``   users with role ADMIN.
- ``SYSTEM``  the system user only (``is_system``), e.g. the funding route.

"Owner" is not a policy: a route about one account declares ``USER`` and looks the account up
with ``accounts.selectors.account_get_owned(user=request.user, account_id=...)``, which answers
404 for another user's or a malformed id.

Usage, for a page (session cookie; CSRF checked by Django's middleware)::

    from accounts.policy import USER, policy

    @policy(USER, methods=["GET", "POST"])
    def dashboard(request): ...

and for the JSON API (JWT: ``Authorization: Bearer`` or the token cookie), declared beside the
ninja operation with ``aegis.api.operation``; ``aegis.api.guarded_urls`` wraps each API path in
this decorator, so a caller is checked before its body is read::

    @operation(router, "POST", "/transactions", USER, strict="transfer", url_name="transactions", ...)
    def transaction_create(request, payload: TransferIn): ...

Arguments:

- ``methods``: allowed HTTP methods (HEAD is implied by GET); others answer 405.
- ``strict``: a rate-limit group (``"auth"``, ``"transfer"``, ``"admin"``) counted per client
  IP under ``settings.AEGIS_RATELIMIT_STRICT``; each group has its own counter, so unrelated
  routes never exhaust each other. Only state-changing requests count against it (every
  method but GET, HEAD and OPTIONS): reading a page, or the transfer page polling a
  PROCESSING transfer once a second, never spends the budget of the POSTs it guards. The
  global limit (``AEGIS_RATELIMIT_GLOBAL``) applies to every request, reads included,
  through ``GlobalRateLimitMiddleware``.

Order of checks: global and strict limits (429; counted together by GlobalRateLimitMiddleware
before anything else, so anonymous floods and wrong non-read methods count too), method (405),
authentication (API 401 / page redirect to login), access (403). API
routes answer errors as JSON (`aegis.http.error_response`); pages through `aegis.http.error_page`.
On API routes `request.user` comes from the token only (never the session) and `request.auth`
holds the token's claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.urls import Resolver404, resolve
from ninja import NinjaAPI, Router

from accounts.auth import InvalidToken, authenticate_api
from accounts.ratelimits import Limit, check_group, client_ip, limits_hit
from aegis.api import SIGNED_IN
from aegis.errors import AegisError, MethodNotAllowed, NotAuthenticated, PermissionDenied, RateLimited
from aegis.http import error_page, error_response

PUBLIC = "public"
USER = "user"
ADMIN = "admin"
SYSTEM = "system"
ACCESS_LEVELS = (PUBLIC, USER, ADMIN, SYSTEM)


@dataclass(frozen=True)
class Policy:
    access: str
    methods: tuple[str, ...]
    strict: str | None = None


def route_policy(view) -> Policy | None:
    """The policy a (possibly further decorated) view declared, or None."""
    return getattr(view, "aegis_policy", None)


def _authenticate_api(request: HttpRequest, access: str) -> None:
    try:
        user, claims = authenticate_api(request)
    except InvalidToken:
        if access != PUBLIC:
            raise
        user, claims = None, None  # a stale token must not lock anyone out of login/register
    request.user = user or AnonymousUser()
    request.auth = claims


# Requests that only read: never counted against a strict group (see the module docstring).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def counts_as_strict(declared: Policy | None, request: HttpRequest) -> bool:
    return declared is not None and bool(declared.strict) and request.method not in READ_METHODS


def strict_limit(group: str) -> Limit:
    """A route's strict limit: each group its own counter per client, all at the same rate."""
    return Limit(f"strict:{group}", settings.AEGIS_RATELIMIT_STRICT)


def _enforce(request: HttpRequest, declared: Policy, is_api: bool) -> None:
    allowed = declared.methods + (("HEAD",) if "GET" in declared.methods else ())
    if request.method not in allowed:
        raise MethodNotAllowed(allowed=declared.methods)
    if counts_as_strict(declared, request) and getattr(request, "aegis_strict_counted", None) != declared.strict:
        # Normally GlobalRateLimitMiddleware has counted it already, with the global limit in
        # the same command; a view must keep its limit if that middleware is ever left out.
        limits_hit(key=client_ip(request), limits=[strict_limit(declared.strict)])
    if is_api:
        _authenticate_api(request, declared.access)
    if declared.access == PUBLIC:
        return
    user = request.user
    if not user.is_authenticated:
        raise NotAuthenticated()
    if declared.access == ADMIN and not user.is_admin:
        raise PermissionDenied("Administrators only.")
    if declared.access == SYSTEM and not user.is_system:
        raise PermissionDenied("Only the system user may do this.")


def policy(access: str, *, methods=("GET",), strict: str | None = None):
    """Declare and enforce a route's policy (see the module docstring)."""
    if access not in ACCESS_LEVELS:
        raise ValueError(f"Unknown access level {access!r}; use one of {ACCESS_LEVELS}.")
    if strict is not None:
        check_group(f"strict:{strict}")  # a bad name fails at import, not on every request
    declared = Policy(access=access, methods=tuple(m.upper() for m in methods), strict=strict)

    def decorator(view):
        view_is_api = getattr(view, "aegis_api", False)  # an API path (aegis.api.guarded_urls)

        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            is_api = view_is_api or getattr(request, "aegis_api", False)
            try:
                _enforce(request, declared, is_api)
            except AegisError as err:
                return error_response(err) if is_api else error_page(request, err)
            if is_api:
                return view(request, *args, **kwargs)  # the API maps its own errors (aegis.api.AegisAPI)
            try:
                return view(request, *args, **kwargs)
            except AegisError as err:
                return error_page(request, err)

        wrapper.aegis_policy = declared
        return wrapper

    return decorator


class GlobalRateLimitMiddleware:
    """Every request counts against AEGIS_RATELIMIT_GLOBAL per client IP; over it answers 429.

    When the request's route declares a strict group and the request is not a read (GET, HEAD,
    OPTIONS), that limit is counted here too, in the same database command
    (`accounts.ratelimits.limits_hit`), and the route's policy skips it.
    """

    # Health probes and the metrics scraper come from the platform, not clients, and must
    # answer even when busy (/metrics is still admin- or token-only).
    EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path_info not in self.EXEMPT_PATHS:
            limits = [Limit("global", settings.AEGIS_RATELIMIT_GLOBAL)]
            declared = self._route_policy(request)
            if counts_as_strict(declared, request):
                limits.append(strict_limit(declared.strict))
                request.aegis_strict_counted = declared.strict
            try:
                limits_hit(key=client_ip(request), limits=limits)
            except RateLimited as err:
                if request.path_info.startswith("/api/"):
                    return error_response(err)
                return error_page(request, err)
        return self.get_response(request)

    @staticmethod
    def _route_policy(request: HttpRequest) -> Policy | None:
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            return None  # the 404 still counts against the global limit
        return route_policy(match.func)


# --- API operations (django-ninja) ------------------------------------------------------------
def operation(router: Router, method: str, path: str, access: str, *, strict: str | None = None, **options):
    """A ninja operation with its `accounts.policy` access level and strict group (see the docstring)."""

    def decorator(view):
        view.aegis_access = (access, strict)
        # An operation's own `openapi_extra` (e.g. a file answer's content types) keeps its keys.
        extra = {**options.pop("openapi_extra", {}), **({} if access == PUBLIC else {"security": SIGNED_IN})}
        return router.api_operation([method], path, by_alias=True, openapi_extra=extra, **options)(view)

    return decorator


def guarded_urls(api: NinjaAPI, routers) -> list:
    """The API's URL patterns, each path view wrapped in the policy its operations declared."""
    guards = {}
    for router in routers:
        for path_view in router.path_operations.values():
            declared = {op.view_func.aegis_access for op in path_view.operations}
            if len(declared) != 1:
                raise ImproperlyConfigured(f"The operations on one path must share a policy: {declared}")
            ((access, strict),) = declared
            methods = [method for op in path_view.operations for method in op.methods]
            guards |= dict.fromkeys(
                (op.url_name for op in path_view.operations), policy(access, methods=methods, strict=strict)
            )
    patterns = [pattern for pattern in api.urls[0] if pattern.name in guards]  # not ninja's api-root
    for pattern in patterns:
        head_as_get = _head_as_get(pattern.callback)
        head_as_get.aegis_api = True
        pattern.callback = guards[pattern.name](head_as_get)
    return patterns


def _head_as_get(view):
    """HEAD runs the GET operation, as Django's class-based views do (the policy implies HEAD by GET)."""

    @wraps(view)
    def dispatch(request: HttpRequest, *args, **kwargs):
        if request.method != "HEAD":
            return view(request, *args, **kwargs)
        request.method = "GET"
        try:
            return view(request, *args, **kwargs)
        finally:
            request.method = "HEAD"

    return dispatch
