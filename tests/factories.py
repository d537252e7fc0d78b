"""Small factories for tests: real rows in the real embedded server."""

import itertools
import time

import pyotp

from accounts.models import Account, Role, TotpDevice, User
from accounts.two_factor import STEP_SECONDS

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple 42"


def make_user(*, email: str | None = None, role: str = Role.USER, password: str = PASSWORD, **extra) -> User:
    email = email or f"user{next(_seq)}@example.com"
    return User.objects.create_user(email, password, role=role, **extra)


def make_account(*, user: User | None = None, **extra) -> Account:
    return Account.objects.create(user=user or make_user(), **extra)


def enrol_totp(user: User) -> str:
    """Give `user` a confirmed authenticator (as the enrolment page would); its secret, to compute codes."""
    secret = pyotp.random_base32()
    TotpDevice.objects.create(user=user, secret=secret)
    return secret


def totp_code(secret: str, *, after_step: int = 0) -> str:
    """A valid code for `secret`: the current step's, or the next one's when the current was used
    (`after_step`: the device's last_step), waiting if even that is too far ahead."""
    step = max(int(time.time()) // STEP_SECONDS, after_step + 1)
    while step > int(time.time()) // STEP_SECONDS + 1:  # beyond the accepted drift: wait for it
        time.sleep(1)
    return pyotp.TOTP(secret).generate_otp(step)


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
