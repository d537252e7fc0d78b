"""Rate limits: fixed-window counters shared by every worker, answering RateLimited (429).

Limits come from settings read at call time (`AEGIS_RATELIMIT_GLOBAL`, `..._STRICT`,
`..._LOGIN`, `..._LOGIN_ACCOUNT`; format `count/[n]unit` such as `500/15m`), so `override_settings`
works in tests.

Every counter of one key (a client IP, an email address) lives in one document of the
`rate_limits` collection (`accounts.models.RateLimitCounter`, TTL index on `expires_at`)::

    {_id: "<key>", counters: {<group>: {window: <start, epoch s>, count: n}}, expires_at}

so one request counts all the limits that apply to it (the global limit and its route's strict
group) with ONE `findAndModify`: an update pipeline that restarts a group's count when its window
has moved on and adds one otherwise, atomically on the server. Groups never share a count.
This replaced django-ratelimit's `cache.add()` + `cache.incr()` per limit (four commands for a
transfer request; two of every fifteen its MongoDB round trips went to counting).

Password checks in flight (`password_check_slot`) are bounded too, but by CPU, not by count:
at most AEGIS_PASSWORD_HASH_SLOTS bcrypt checks run at once on this machine, across every
worker process and thread of the app; one more answers 429 at once instead of queueing
(`docs/rate-limits.md` has the measurements).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import connections
from django.http import HttpRequest
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from accounts.models import RateLimitCounter
from aegis.errors import RateLimited
from aegis.mongo import collection
from aegis.observability import rate_limited
from aegis.security import is_trusted_proxy

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")
_GROUP = re.compile(r"^[a-z][a-z0-9:-]*$")  # safe as a field name: no '.' or '$'


class Limit(NamedTuple):
    group: str  # "global", "strict:transfer", "login-account", ...
    rate: str  # "500/15m"


def parse_rate(rate: str) -> tuple[int, int]:
    """`"500/15m"` → (500, 900): the allowed count and the window in seconds."""
    match = _RATE.match(rate)
    if match is None:
        raise ValueError(f"A rate looks like 500/15m, not {rate!r}.")
    count, multiplier, unit = match.groups()
    return int(count), int(multiplier or 1) * _UNIT_SECONDS[unit]


def client_ip(request: HttpRequest) -> str:
    """The client's address, as the key for per-client limits.

    REMOTE_ADDR, unless it is a trusted proxy (AEGIS_TRUSTED_PROXIES) and the header named by
    AEGIS_CLIENT_IP_HEADER is present: then the right-most address in that header that is not
    itself a trusted proxy. Proxies append what they saw to X-Forwarded-For, so everything to the
    left of that entry was written by the client and is never trusted; a client talking to the
    app directly cannot change its key with any header.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    header = settings.AEGIS_CLIENT_IP_HEADER
    if not header or not is_trusted_proxy(remote):
        return remote
    hops = [hop.strip() for hop in request.META.get(header, "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted_proxy(hop):
            return hop
    return hops[0] if hops else remote


def limits_hit(*, key: str, limits: list[Limit], increment: bool = True) -> None:
    """Count one hit on every limit for `key`; RateLimited if any of them is now exceeded.

    With increment=False it only reads the counts (used to refuse before doing work whose
    failures are counted separately, e.g. per-account login failures).
    """
    waits = []
    for group, (count, allowed, retry_after) in limits_state(key=key, limits=limits, increment=increment).items():
        if count > allowed or (not increment and count >= allowed):
            rate_limited(group)  # per-process metric: aegis_rate_limited_requests_total
            waits.append(retry_after)
    if waits:
        raise RateLimited(retry_after=max(waits))  # until every exceeded limit allows


def limits_state(*, key: str, limits: list[Limit], increment: bool = True) -> dict[str, tuple[int, int, int]]:
    """Per group: (count in the current window, allowed count, seconds until the window ends).

    Counts one hit first unless increment=False; never raises RateLimited (callers that weigh
    several counts together, like the login limits, decide themselves).
    """
    if not limits:
        return {}
    now = _now()
    windows = {}
    for limit in limits:
        check_group(limit.group)
        allowed, period = parse_rate(limit.rate)
        windows[limit.group] = (allowed, period, int(now // period * period))
    doc = _count(key, windows) if increment else _read(key)
    counters = (doc or {}).get("counters", {})
    state = {}
    for group, (allowed, period, window) in windows.items():
        counter = counters.get(group) or {}
        # A stored window newer than ours (another host's clock is ahead) is the current one.
        current = counter.get("window", -1) >= window
        count = counter.get("count", 0) if current else 0
        wait = max(counter.get("window", window), window) + period - now
        state[group] = (count, allowed, max(1, int(wait)))
    return state


def limit_reset(*, group: str, key: str) -> None:
    """Forget `key`'s count for `group` (e.g. a client's failed logins once it logged in)."""
    check_group(group)
    _collection().update_one({"_id": _document_id(key)}, {"$unset": {f"counters.{group}": ""}})


def _now() -> float:
    return time.time()  # a seam for tests that cross window boundaries


def check_group(group: str) -> None:
    """ValueError unless `group` is safe as a field name (no '.', no '$')."""
    if not isinstance(group, str) or not _GROUP.match(group):
        raise ValueError(f"Rate-limit group {group!r} must match {_GROUP.pattern}.")


def limit_hit(*, group: str, rate: str, key: str, increment: bool = True) -> None:
    """`limits_hit` for a single limit."""
    limits_hit(key=key, limits=[Limit(group, rate)], increment=increment)


def _collection():
    return collection(RateLimitCounter)


def _document_id(key: str) -> str:
    # Keys are IPs and emails (at most 254 characters by the forms); anything longer, or not
    # encodable as UTF-8 (a lone surrogate from JSON), is hashed so no input breaks the command.
    try:
        key.encode()
        fits = len(key) <= 256
    except UnicodeEncodeError:
        fits = False
    if not fits:
        key = "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key


def _read(key: str) -> dict | None:
    return _collection().find_one({"_id": _document_id(key)}, {"counters": 1})


def _count(key: str, windows: dict[str, tuple[int, int, int]]) -> dict:
    """One atomic findAndModify: per group, restart the count in a new window, else add one.

    Only an older stored window restarts: a request that computed the current window a moment
    before another host stored the next one adds to that next window instead of resetting it.
    """
    fields = {}
    for group, (_allowed, _period, window) in windows.items():
        path = f"$counters.{group}"
        fields[f"counters.{group}"] = {
            "$cond": [
                {"$gte": [f"{path}.window", window]},  # a missing field compares lower: restart
                {"window": f"{path}.window", "count": {"$add": [f"{path}.count", 1]}},
                {"window": window, "count": 1},
            ]
        }
    # The document may go once every window it holds has ended.
    ends = max(window + period for _allowed, period, window in windows.values())
    fields["expires_at"] = {"$max": ["$expires_at", datetime.fromtimestamp(ends, tz=UTC)]}
    arguments = {
        "filter": {"_id": _document_id(key)},
        "update": [{"$set": fields}],
        "projection": {"counters": 1},
        "upsert": True,
        "return_document": ReturnDocument.AFTER,
    }
    try:
        return _collection().find_one_and_update(**arguments)
    except DuplicateKeyError:
        # Two first hits for a new key raced to insert it; the loser's second try updates it.
        return _collection().find_one_and_update(**arguments)


# --- password checks in flight ------------------------------------------------------------------
class PasswordChecksBusy(RateLimited):
    message = "The server is busy checking passwords. Try again in a moment."


_semaphores: dict[int, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


def _process_semaphore(slots: int) -> threading.BoundedSemaphore:
    with _semaphores_lock:  # read at call time, so override_settings applies; one per size
        if slots not in _semaphores:
            _semaphores[slots] = threading.BoundedSemaphore(slots)
        return _semaphores[slots]


def _slot_directory() -> Path:
    """One folder of slot files per install and database: the app's workers on this machine share
    it; test sessions (each on its own embedded server) and other users never do."""
    db = connections["default"].settings_dict
    scope = f"{settings.BASE_DIR}|{db.get('HOST')}|{db.get('NAME')}"
    digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
    directory = Path(tempfile.gettempdir()) / f"aegis-{os.getuid()}" / f"password-slots-{digest}"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _machine_slot(slots: int) -> int | None:
    """A file descriptor holding one of `slots` exclusive flocks, or None when all are held.

    The kernel drops a flock when its holder closes it or dies, so a killed worker never
    keeps a slot; each open() is its own lock owner, so threads exclude each other too.
    """
    directory = _slot_directory()
    for i in range(slots):
        fd = os.open(directory / f"slot-{i}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


@contextmanager
def password_check_slot() -> Iterator[None]:
    """Hold one of the AEGIS_PASSWORD_HASH_SLOTS while hashing a password from a request.

    Never waits: when every slot is taken it raises PasswordChecksBusy (429, Retry-After 1) at
    once, so a burst of logins costs the machine at most that many cores and the other requests
    keep theirs. The process-wide semaphore caps a threaded server (runserver, the test
    live_server) without a system call; the flock slots cap gunicorn's single-threaded workers,
    which a per-process bound alone would never stop (each has one request in flight).
    """
    slots = settings.AEGIS_PASSWORD_HASH_SLOTS
    semaphore = _process_semaphore(slots)
    if not semaphore.acquire(blocking=False):
        rate_limited("password-check")
        raise PasswordChecksBusy(retry_after=1)
    try:
        fd = _machine_slot(slots)
        if fd is None:
            rate_limited("password-check")
            raise PasswordChecksBusy(retry_after=1)
        try:
            yield
        finally:
            os.close(fd)  # releases the flock
    finally:
        semaphore.release()
