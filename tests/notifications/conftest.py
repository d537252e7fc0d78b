"""Fixtures for the outbox, notifications and observability tests (real embedded server)."""

import pytest

from aegis.mongo import collection, get_client
from transfers.models import OutboxEvent


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.AEGIS_OUTBOX_BACKOFF_SECONDS = 0
    settings.AEGIS_OUTBOX_BACKOFF_MAX_SECONDS = 0


@pytest.fixture
def fail_point():
    admin = get_client().admin

    def arm(data: dict, times: int = 1):
        admin.command({"configureFailPoint": "failCommand", "mode": {"times": times}, "data": data})

    yield arm
    admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def events(**query) -> list[dict]:
    return list(collection(OutboxEvent).find(query).sort([("created_at", 1), ("_id", 1)]))
