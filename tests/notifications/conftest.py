"""Fixtures for the outbox, notifications and observability tests (real embedded server)."""

import pytest

from aegis.mongo import collection
from events.dispatcher import Dispatcher
from events.models import OutboxEvent
from transfers.services import transfer_create


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


def send(sender, receiver, paise, key):
    return transfer_create(
        actor=sender.user,
        from_account_id=str(sender.pk),
        to_account_id=str(receiver.pk),
        amount_paise=paise,
        idempotency_key=key,
    )


def drain(dispatcher: Dispatcher, passes: int = 20) -> None:
    """Run the dispatcher until a pass finds nothing to do (at most `passes` passes)."""
    for _ in range(passes):
        if not any(dispatcher.run_once().values()):
            return
