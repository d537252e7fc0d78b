"""Request ids, structured (JSON) logs, and the per-process metrics.

- `RequestLogMiddleware` (first in MIDDLEWARE): gives every request an id (the client's
  `X-Request-ID` when it is a sane token, else a fresh one), returns it in the `X-Request-ID`
  response header, exposes it as `request.request_id` and to services through
  `current_request_id()`, and logs one JSON line per request on logger `aegis.request`
  (method, path, status, duration_ms, request_id, user_id). It never logs headers, bodies,
  query strings or cookies.
- `JsonFormatter`: one JSON object per line; `extra={...}` fields become keys; keys that look
  like secrets are dropped; with tracing on (aegis/tracing.py) every line inside a span carries
  its `trace_id` and `span_id`.
- The per-process metrics (`REGISTRY`); `transfers.observability` records the transfer outcomes.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

from aegis.tracing import current_span_id, current_trace_id

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("aegis_request_id", default="")

# Per-process metrics (exported by aegis/metrics.py, which adds the database-computed ones).
REGISTRY = CollectorRegistry(auto_describe=False)

TRANSFER_SECONDS = Histogram(
    "aegis_transfer_duration_seconds",
    "Transfer service latency in this process, by outcome.",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
TRANSFER_OUTCOMES = Counter(
    "aegis_transfer_outcomes",
    "Transfer service outcomes in this process.",
    ["outcome"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "aegis_rate_limited_requests",
    "Requests answered 429 by this process, by limit group.",
    ["group"],
    registry=REGISTRY,
)


def transfer_observed(*, outcome: str, seconds: float) -> None:
    TRANSFER_SECONDS.labels(outcome=outcome).observe(seconds)
    TRANSFER_OUTCOMES.labels(outcome=outcome).inc()


def rate_limited(group: str) -> None:
    RATE_LIMITED.labels(group=group.split(":")[0]).inc()


request_logger = logging.getLogger("aegis.request")


def current_request_id() -> str:
    """The id of the request being served in this context ("" outside a request)."""
    return _request_id.get()


def request_id_from(value: str | None) -> str:
    value = (value or "").strip()
    return value if _SANE_REQUEST_ID.match(value) else uuid.uuid4().hex


def _user_id(request) -> str:
    # request.user is the token's user on API routes (accounts.policy) and the session's elsewhere.
    try:
        user = request.__dict__.get("user") or getattr(request, "user", None)
        return str(user.pk) if user is not None and user.is_authenticated else ""
    except Exception:  # a broken session store must never break logging
        return ""


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        response[REQUEST_ID_HEADER] = request_id
        request_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "request_id": request_id,
                "user_id": _user_id(request),
            },
        )
        return response


# --- JSON log lines -------------------------------------------------------------------------------

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SECRET_KEY = re.compile(r"pass|secret|token|authori|cookie|csrf|session|api[_-]?key|credential", re.I)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key.startswith("_") or _SECRET_KEY.search(key):
                continue
            if key == "request":  # Django attaches the request object: keep method and path only,
                # never its query string, headers or body
                value = f"{getattr(value, 'method', '')} {getattr(value, 'path', '')}".strip()
            line[key] = value
        if "request_id" not in line and current_request_id():
            line["request_id"] = current_request_id()
        trace_id = current_trace_id()  # "" when tracing is off: the key is then left out
        if trace_id and "trace_id" not in line:
            line["trace_id"] = trace_id
            line["span_id"] = current_span_id()
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
