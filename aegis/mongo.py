"""The MongoDB handles the money path uses, and the one clear line for an unreachable server.

The money path talks to MongoDB directly through pymongo sessions. It reuses the client that
django-mongodb-backend creates lazily in each process (so it is never created before a
worker fork), and never shares a session between threads.
"""

import logging
import random
import time
from contextlib import contextmanager

import pymongo
from bson import Int64
from django.conf import settings
from django.db import connections
from pymongo import ReadPreference
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.mongo_client import MongoClient
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from aegis.tracing import span
from aegis.txn_sessions import note_session

# Every money-moving transaction runs with these (DESIGN §4, property 3).
TXN_OPTIONS = {
    "read_concern": ReadConcern("snapshot"),
    "write_concern": WriteConcern("majority"),
    "read_preference": ReadPreference.PRIMARY,
}


def get_db() -> Database:
    return connections["default"].database


def get_client() -> MongoClient:
    return get_db().client


def collection(model):
    """The pymongo collection behind a Django model."""
    return get_db()[model._meta.db_table]


def db_ping() -> bool:
    try:
        get_db().command("ping")
        return True
    except Exception:  # any failure to answer means "not ready"
        return False


def unreachable_message(exc: Exception | None = None) -> str:
    uri = settings.DATABASES["default"]["HOST"]
    return (
        f"aegis: cannot reach MongoDB at {uri} — start the embedded server with `make db` "
        f"(or `make run`), or set MONGODB_URI to a running deployment."
    )


class TransactionDeadlineExceeded(Exception):
    """Write conflicts or unknown commit results persisted past the deadline."""


class DocumentBusy(Exception):
    """A write inside the transaction met a document that another open transaction has written.

    Raised by `queue_on_conflict`; `run_transaction` answers it by aborting, queueing behind the
    holder (`_queue_behind`) and running the transaction again at once, instead of backing off.
    """

    def __init__(self, coll: Collection, doc_id):
        super().__init__(f"{coll.name} {doc_id} is held by another transaction")
        self.collection = coll
        self.doc_id = doc_id


WRITE_CONFLICT = 112


@contextmanager
def queue_on_conflict(coll: Collection, doc_id):
    """Around a transaction's write of one contended document: a write conflict on it becomes
    DocumentBusy, so the retry waits for the holder instead of guessing a backoff."""
    try:
        yield
    except OperationFailure as error:
        if error.code == WRITE_CONFLICT:
            raise DocumentBusy(coll, doc_id) from error
        raise


_logger = logging.getLogger("aegis.mongo")
# Counted per process and exported by /metrics. Conflicts are retried, never failures;
# `queue_waits` counts the retries that queued behind a holder (DocumentBusy) first.
conflict_retries = 0
queue_waits = 0


# The abort gets its own short bound: it must be sent even after the transaction's own bound ran
# out, or the open transaction would pin every document it wrote until the server's lifetime
# limit (60 s) aborted it, and every transfer touching those accounts would conflict meanwhile.
ABORT_TIMEOUT_SECONDS = 2
# A command already running when the retry deadline passes may finish within this much more:
# the bound is there to cut a *hung* command, not one that is merely slow under contention
# (cutting those mid-flight turned 503 "retry" answers into long 409 "in flight" ones).
COMMAND_GRACE_SECONDS = 2


def _abort_quietly(session) -> None:
    if session.in_transaction:
        try:
            with pymongo.timeout(ABORT_TIMEOUT_SECONDS):
                session.abort_transaction()
        except PyMongoError:  # the server aborts it anyway when the session ends
            pass


def _remaining(deadline: float, cause: Exception | None = None) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TransactionDeadlineExceeded(str(cause or "the deadline ran out")) from cause
    return left


def run_transaction(callback, *, deadline_seconds: float, client: MongoClient | None = None):
    """Run `callback(session)` in one snapshot/majority transaction and commit it.

    Like pymongo's `with_transaction`, but with our own deadline (pymongo's is a fixed 120 s,
    longer than any worker timeout) and jittered backoff, so that hot-account contention
    spreads out instead of colliding again in lockstep:
    - DocumentBusy (a write conflict on a document the callback marked with
      `queue_on_conflict`): abort, queue behind the transaction holding it, run again at once;
    - TransientTransactionError (any other write conflict): abort, back off, run again;
    - UnknownTransactionCommitResult: commit again (commit is idempotent on the server);
    - anything else, including our own domain errors: abort and raise.
    Past the deadline, raises TransactionDeadlineExceeded; the transaction is aborted, and a
    commit whose result stayed unknown is for the caller to look up, never to assume.

    The deadline bounds every command too (`pymongo.timeout` around the callback and each
    commit, plus COMMAND_GRACE_SECONDS), so one hung command cannot outlive it by more than the
    grace; the abort runs outside that bound, so it
    is still sent after a timeout. Callers must not wrap this in a `pymongo.timeout` of their
    own: a nested bound can only shorten the outer one, and an expired outer bound would stop
    the abort from being sent.
    """
    global conflict_retries, queue_waits
    client = client or get_client()
    deadline = time.monotonic() + deadline_seconds
    attempt = 0
    with client.start_session() as session:
        note_session(session)  # so the sweeper can end our transaction if this process dies in it
        while True:
            session.start_transaction(**TXN_OPTIONS)
            try:
                with pymongo.timeout(_remaining(deadline) + COMMAND_GRACE_SECONDS):
                    result = callback(session)
            except DocumentBusy as busy:
                _abort_quietly(session)
                attempt += 1
                conflict_retries += 1
                queue_waits += 1
                _queue_behind(busy, deadline)
                continue
            except PyMongoError as exc:
                _abort_quietly(session)
                if exc.timeout:  # the deadline ran out inside a command: retrying cannot help
                    raise TransactionDeadlineExceeded(str(exc)) from exc
                if exc.has_error_label("TransientTransactionError") and time.monotonic() < deadline:
                    attempt += 1
                    conflict_retries += 1
                    _backoff(attempt)
                    continue
                if exc.has_error_label("TransientTransactionError"):
                    raise TransactionDeadlineExceeded(str(exc)) from exc
                raise
            except BaseException:
                _abort_quietly(session)
                raise
            while True:
                try:
                    with (
                        pymongo.timeout(_remaining(deadline) + COMMAND_GRACE_SECONDS),
                        span("transaction.commit"),  # a span per commit try (aegis/tracing.py)
                    ):
                        session.commit_transaction()
                    return result
                except PyMongoError as exc:
                    if exc.timeout:  # the commit's result is unknown; the caller looks it up
                        raise TransactionDeadlineExceeded(str(exc)) from exc
                    if exc.has_error_label("UnknownTransactionCommitResult") and time.monotonic() < deadline:
                        _logger.warning("commit result unknown; committing again: %s", exc)
                        time.sleep(0.01)
                        continue
                    if exc.has_error_label("TransientTransactionError") and time.monotonic() < deadline:
                        attempt += 1
                        conflict_retries += 1
                        _backoff(attempt)
                        break  # run the whole transaction again
                    if exc.has_error_label("TransientTransactionError") or exc.has_error_label(
                        "UnknownTransactionCommitResult"
                    ):
                        raise TransactionDeadlineExceeded(str(exc)) from exc
                    raise


def _queue_behind(busy: DocumentBusy, deadline: float) -> None:
    """Wait, on the server, until the transaction holding `busy.doc_id` has committed or aborted.

    A write outside a transaction that meets a document written by an open transaction is not
    aborted: the server retries it until the holder ends (as mongod's writeConflictRetry does),
    so this single update returns just after the holder let go, with nothing thrown away and no
    guessed backoff. It must change the document to wait (a no-op update does not); the change is
    a counter of how often transfers queued for it, which tells operators which accounts are hot.
    Bounded by the transaction's deadline: a holder that does not end in time costs the
    deadline, then 503, exactly as a conflict storm would. (A holder whose process died with
    the transaction open is ended by the recovery sweeper: aegis/txn_sessions.py.)
    """
    try:
        with pymongo.timeout(_remaining(deadline) + COMMAND_GRACE_SECONDS):
            busy.collection.update_one({"_id": busy.doc_id}, {"$inc": {"contention_waits": Int64(1)}})
    except PyMongoError as exc:
        if exc.timeout:
            raise TransactionDeadlineExceeded(str(exc)) from exc
        raise
    _remaining(deadline, busy)


def _backoff(attempt: int) -> None:
    # Full jitter, exponential from 2 ms and capped at 100 ms: losers of a conflict spread out
    # instead of colliding again in lockstep on a hot document.
    time.sleep(random.uniform(0, min(0.1, 0.002 * 2 ** min(attempt, 6))))
