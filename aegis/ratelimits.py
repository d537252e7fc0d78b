"""Rate-limit primitives on django-ratelimit's counters, answering with RateLimited (429).

Limits come from settings read at call time (`AEGIS_RATELIMIT_GLOBAL`, `..._STRICT`,
`..._LOGIN`; format `count/period` such as `500/15m`), so `override_settings` works in tests.
Counters live in the shared cache (`aegis.cache.MongoCache`), one per group and key, so
unrelated routes never share a counter.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from aegis.errors import RateLimited
from aegis.observability import rate_limited


def client_ip(request: HttpRequest) -> str:
    """The client's address, as the key for per-client limits.

    REMOTE_ADDR, unless it is a trusted proxy (AEGIS_TRUSTED_PROXIES) and the header named by
    AEGIS_CLIENT_IP_HEADER is present: then the right-most address in that header that is not
    itself a trusted proxy. Proxies append what they saw to X-Forwarded-For, so everything to the
    left of that entry was written by the client and is never trusted; a client talking to the
    app directly cannot change its key with any header.
    """
    from aegis.security import is_trusted_proxy

    remote = request.META.get("REMOTE_ADDR") or "unknown"
    header = settings.AEGIS_CLIENT_IP_HEADER
    if not header or not is_trusted_proxy(remote):
        return remote
    hops = [hop.strip() for hop in request.META.get(header, "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted_proxy(hop):
            return hop
    return hops[0] if hops else remote


def limit_hit(request: HttpRequest, *, group: str, rate: str, key: str, increment: bool = True) -> None:
    """Count one hit for (group, key) and raise RateLimited once `rate` is exceeded.

    With increment=False it only checks (used to refuse before doing work whose failures are
    counted separately, e.g. per-account login failures).
    """
    usage = get_usage(request, group=group, key=lambda _group, _request: key, rate=rate, increment=increment)
    if usage is None:  # RATELIMIT_ENABLE = False
        return
    limited = usage["should_limit"] if increment else usage["count"] >= usage["limit"]
    if limited:
        rate_limited(group)  # per-process metric: aegis_rate_limited_requests_total
        raise RateLimited(retry_after=max(1, usage["time_left"]))
