"""The host's queue for an account: this host's workers take an account's money transaction in turn.

The first level of the per-account gate (docs/transfer-engine.md "Hot accounts"). Before a money
transaction opens, the worker takes an exclusive `flock` on the lock files of its two accounts,
in a fixed order (so two transfers A->B and B->A can never wait for each other). Another worker
of this host that wants either account waits here, in the kernel, costing the database nothing,
instead of opening a transaction that would meet a write conflict, abort and run again. The
kernel releases a lock when its holder's process dies, however it dies: that is the lease.

Correctness never depends on this gate: the transaction alone keeps every property of DESIGN
§4. Workers on *other* hosts are not queued here; they meet in the database, where the second
level (the account documents written first, and `aegis.mongo.queue_on_conflict`) queues them
behind each other on the server.

Accounts map onto LOCK_STRIPES files by a hash of their id: the files are few and made once,
and two unrelated accounts share one only in about 1 transfer in LOCK_STRIPES (they then take
turns, which is harmless).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import zlib
from contextlib import ExitStack, contextmanager
from pathlib import Path

from django.conf import settings

from aegis.mongo import TransactionDeadlineExceeded

logger = logging.getLogger("aegis.transfers")

LOCK_STRIPES = 1024
# Polling a non-blocking lock keeps the wait bounded by the transfer's deadline (a blocking
# flock cannot time out); the first retries come fast because a hold lasts milliseconds.
_POLL_FIRST_SECONDS = 0.0005
_POLL_MAX_SECONDS = 0.002


class GateTimeout(TransactionDeadlineExceeded):
    """The account stayed taken by another worker of this host until the transfer's deadline:
    answered like a conflict that outlasted it (503, retry with the same key)."""


def _stripe(account_id) -> int:
    return zlib.crc32(str(account_id).encode()) % LOCK_STRIPES


def _lock_path(stripe: int) -> Path:
    return Path(settings.VAR_DIR) / "gates" / f"{stripe:04d}.lock"


@contextmanager
def host_gate(account_ids, *, deadline: float):
    """Hold this host's gate of every account in `account_ids` (deadline: a time.monotonic())."""
    with ExitStack() as held:
        for stripe in sorted({_stripe(a) for a in account_ids}):
            held.enter_context(_stripe_lock(stripe, deadline))
        yield


@contextmanager
def _stripe_lock(stripe: int, deadline: float):
    path = _lock_path(stripe)
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        # No lock file (read-only VAR_DIR, out of descriptors): the gate is an optimisation, so the
        # transfer goes on without it and the database queues it like a transfer from another host.
        logger.warning("account gate %s unavailable (%s); going on without it", stripe, error)
        yield
        return
    try:
        delay = _POLL_FIRST_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() + delay >= deadline:
                    raise GateTimeout(f"account gate {stripe} stayed taken") from None
                time.sleep(delay)
                delay = min(delay * 2, _POLL_MAX_SECONDS)
        yield
    finally:
        os.close(fd)  # closing the only descriptor of this open file releases its lock
