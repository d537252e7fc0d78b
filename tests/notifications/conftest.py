"""Fixtures for the outbox, notifications and observability tests (real embedded server)."""

import pytest

from aegis.mongo import collection
from transfers.models import OutboxEvent


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.AEGIS_OUTBOX_BACKOFF_SECONDS = 0
    settings.AEGIS_OUTBOX_BACKOFF_MAX_SECONDS = 0


def events(**query) -> list[dict]:
    return list(collection(OutboxEvent).find(query).sort([("created_at", 1), ("_id", 1)]))
