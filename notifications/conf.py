"""Settings of the outbox dispatcher and notifications, read at call time.

Each value comes from Django settings when set there (so `override_settings` works in tests),
else from the environment variable of the same name, else the default.
"""

from __future__ import annotations

import os

from django.conf import settings

DEFAULTS = {
    "AEGIS_OUTBOX_MAX_ATTEMPTS": "5",  # failed deliveries before an event is parked
    "AEGIS_OUTBOX_LEASE_SECONDS": "30",  # how long a dispatcher's claim on an event lasts
    "AEGIS_OUTBOX_BACKOFF_SECONDS": "1",  # first retry delay; doubles per attempt
    "AEGIS_OUTBOX_BACKOFF_MAX_SECONDS": "60",
    "AEGIS_OUTBOX_BATCH": "200",  # pending events read per pass
    "AEGIS_OUTBOX_DELIVERY_BATCH": "100",  # events per delivery transaction (1: one at a time)
    "AEGIS_REQUIRE_DISPATCHER": "false",  # /readyz fails without a live dispatcher heartbeat
    "AEGIS_DISPATCHER_STALE_SECONDS": "30",
}


def _raw(name: str) -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, DEFAULTS[name])
    return str(value)


def number(name: str) -> float:
    return float(_raw(name))


def integer(name: str) -> int:
    return int(float(_raw(name)))


def flag(name: str) -> bool:
    return _raw(name).strip().lower() in {"1", "true", "yes", "on"}
