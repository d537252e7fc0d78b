"""Small factories for tests: real rows in the real embedded server."""

import itertools

from accounts.models import Account, Role, User

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple 42"


def make_user(*, email: str | None = None, role: str = Role.USER, password: str = PASSWORD, **extra) -> User:
    email = email or f"user{next(_seq)}@example.com"
    return User.objects.create_user(email, password, role=role, **extra)


def make_account(*, user: User | None = None, **extra) -> Account:
    return Account.objects.create(user=user or make_user(), **extra)


def park_outbox_events(settings) -> list[dict]:
    """Run a real dispatcher whose only handler always fails, so every pending event is parked."""
    from aegis.mongo import collection
    from events.dispatcher import Dispatcher
    from events.models import OutboxEvent

    settings.AEGIS_OUTBOX_MAX_ATTEMPTS = 1
    settings.AEGIS_OUTBOX_BACKOFF_SECONDS = 0

    def broken(event, session):
        raise ConnectionError("mail relay refused the connection")

    dispatcher = Dispatcher(handlers={"mailer": broken})
    dispatcher.heartbeat(force=True)  # as its loop does; the Events page reads the freshest beat
    for _ in range(10):
        if not any(dispatcher.run_once().values()):
            break
    return list(collection(OutboxEvent).find({"status": "PARKED"}).sort("created_at", 1))
