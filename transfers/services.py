"""The transfer: exactly-once money movement in one MongoDB transaction (DESIGN §4).

Pipeline of `transfer_create` / `system_fund`:
1. Validate the request; resolve the sender *owned by the caller* (404 otherwise) before any
   idempotency lookup, so a foreign account id reveals nothing and writes nothing.
2. Claim the idempotency key: insert a PROCESSING record (the unique index on
   {idempotency_key, from_account} decides races), or, for an existing key, answer by its
   state: COMPLETED -> the original result; different payload -> 422; in flight -> 409;
   FAILED with retries left -> re-enter PROCESSING by one conditional update. Each claim
   carries an `attempt_id` and a lease; only the holder of the claim can settle it.
3. One multi-document transaction (snapshot / majority): settle the claim to COMPLETED
   (conditional on still holding it), guarded debit, credit, two ledger entries with
   `balance_after`, audit entry, outbox event. All of it commits, or none of it. Transfers that
   share an account take turns (the gate: transfers/gate.py on this host, then a server-side
   queue on the account documents; docs/transfer-engine.md "Hot accounts").
4. Write conflicts and unknown commit results are retried inside `run_transaction`; they
   never mark the transfer FAILED. A business refusal (funds, frozen account) marks it
   FAILED, `retry_count + 1`, with the audit entry and outbox event, in one transaction.
5. A claim whose holder died is settled by `transfers_recover_stale` after its lease: it
   becomes FAILED ("interrupted") with no money moved, because money only ever moves in the
   same transaction that marks the record COMPLETED.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

import pymongo
from bson import Int64, ObjectId
from django.conf import settings
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern

from accounts.models import Account, AccountStatus, User
from aegis.clock import now_ms
from aegis.errors import NotFound, PermissionDenied, ValidationFailed
from aegis.ids import parse_object_id
from aegis.money import MAX_TRANSFER_PAISE
from aegis.mongo import DocumentBusy, TransactionDeadlineExceeded, collection, queue_on_conflict, run_transaction
from aegis.observability import current_request_id
from aegis.tracing import annotate, span, traced_attempts
from events.services import outbox_append
from ledger.models import AuditAction
from ledger.services import audit_append, ledger_post_pair
from transfers import exceptions as exc
from transfers.gate import host_gate
from transfers.models import MAX_USER_RETRIES, Transaction, TransactionKind, TransactionStatus

logger = logging.getLogger("aegis.transfers")

MAX_KEY_LENGTH = 100
REVERSAL_KEY_PREFIX = "reversal-"  # reversal-<proposal id>: one reversal per staff decision
RECORD_FAILURE_MIN_SECONDS = 1.0
MAX_NOTE_LENGTH = 140
WRITE_CONFLICT = 112


@dataclass(frozen=True)
class TransferResult:
    transaction: dict
    replayed: bool = False


def _oid(value, *, thing: str) -> ObjectId:
    oid = parse_object_id(value)
    if oid is None:
        raise NotFound(thing=thing)
    return oid


def fingerprint(*, kind: str, to_account_id: ObjectId, amount_paise: int) -> str:
    """What makes two requests with one key the same operation. The note is not part of it."""
    return hashlib.sha256(f"{kind}|{to_account_id}|{amount_paise}".encode()).hexdigest()


def _validate(*, amount_paise: int, idempotency_key: str, note: str) -> None:
    if isinstance(amount_paise, bool) or not isinstance(amount_paise, int):
        raise ValidationFailed("amount must be whole paise.", field="amount")
    if not 0 < amount_paise <= MAX_TRANSFER_PAISE:
        raise ValidationFailed("amount must be more than ₹0 and at most ₹10,000.00.", field="amount")
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise ValidationFailed("idempotencyKey is required.", field="idempotencyKey")
    if len(idempotency_key) > MAX_KEY_LENGTH or not idempotency_key.isprintable():
        raise ValidationFailed(
            f"idempotencyKey must be at most {MAX_KEY_LENGTH} printable characters.", field="idempotencyKey"
        )
    if not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH:
        raise ValidationFailed(f"note must be at most {MAX_NOTE_LENGTH} characters.", field="note")


# --- entry points -----------------------------------------------------------------------------


def transfer_create(
    *,
    actor: User,
    from_account_id: str,
    to_account_id: str,
    amount_paise: int,
    idempotency_key: str,
    note: str = "",
    request_id: str = "",
) -> TransferResult:
    """Move `amount_paise` from the caller's account to another, exactly once per key."""
    _validate(amount_paise=amount_paise, idempotency_key=idempotency_key, note=note)
    if idempotency_key.startswith(REVERSAL_KEY_PREFIX):  # the engine's own keys (disputes.services)
        raise ValidationFailed(f"idempotencyKey must not start with {REVERSAL_KEY_PREFIX!r}.", field="idempotencyKey")
    # Ownership first: a foreign or malformed id is "not found" before anything else happens.
    sender_oid = _oid(from_account_id, thing="Account")
    sender = collection(Account).find_one({"_id": sender_oid}, {"user_id": 1, "currency": 1})
    if sender is None or sender["user_id"] != actor.pk:
        raise NotFound(thing="Account")
    return _transfer(
        actor=actor,
        sender=sender,
        to_account_id=to_account_id,
        amount_paise=amount_paise,
        idempotency_key=idempotency_key,
        note=note,
        request_id=request_id,
        kind=TransactionKind.TRANSFER,
    )


def system_fund(
    *,
    actor: User,
    to_account_id: str,
    amount_paise: int,
    idempotency_key: str,
    note: str = "",
    request_id: str = "",
    requested_by: User | None = None,
) -> TransferResult:
    """Fund an account from the system account (no balance floor). System user only.

    `requested_by` is the staff member who asked for it in the staff console: the money still
    leaves the system account, and the record and its audit entries name who created it.
    """
    if not actor.is_system:
        raise PermissionDenied("Only the system user can fund accounts.")
    if requested_by is not None and not requested_by.is_admin:
        raise PermissionDenied("Only staff can request a funding.")
    _validate(amount_paise=amount_paise, idempotency_key=idempotency_key, note=note)
    sender = collection(Account).find_one({"user_id": actor.pk})
    if sender is None:
        raise NotFound("The system account does not exist; run `manage.py bootstrap`.", thing="Account")
    return _transfer(
        actor=actor,
        sender=sender,
        to_account_id=to_account_id,
        amount_paise=amount_paise,
        idempotency_key=idempotency_key,
        note=note or "Initial funds",
        request_id=request_id,
        kind=TransactionKind.SYSTEM_FUNDING,
        requested_by=requested_by,
    )


def reversal_execute(
    *,
    approver: User,
    requested_by: User,
    original_id,
    amount_paise: int,
    idempotency_key: str,
    note: str = "",
    request_id: str = "",
) -> TransferResult:
    """Return `amount_paise` of a COMPLETED transfer or funding: its receiver pays its sender back.

    A transfer like any other (claim, one money transaction, ledger pair, audit, outbox,
    recovery), with three differences: the legs may be frozen accounts (freezing stops the
    customer, not the bank's correction), the money transaction also adds the amount to the
    original's `reversed_amount` under a guard that it never exceeds the original's amount
    (ReversalExceedsOriginal otherwise), and only staff run it: `approver` is the checker,
    `requested_by` the maker (disputes.services enforces that they differ). The caller derives
    `idempotency_key` from its decision, so a decision moves money once however often it runs.
    """
    if not (approver.is_admin and requested_by.is_admin):
        raise PermissionDenied("Only staff can reverse a transaction.")
    if approver.pk == requested_by.pk:
        raise PermissionDenied("A reversal needs two staff members: its maker cannot approve it.")
    _validate(amount_paise=amount_paise, idempotency_key=idempotency_key, note=note)
    original = collection(Transaction).find_one({"_id": _oid(original_id, thing="Transaction")})
    if original is None:
        raise NotFound(thing="Transaction")
    if original["kind"] == TransactionKind.REVERSAL or original["status"] != TransactionStatus.COMPLETED:
        raise ValidationFailed("Only a completed transfer or funding can be reversed.", field="transactionId")
    sender = collection(Account).find_one({"_id": original["to_account_id"]}, {"user_id": 1, "currency": 1})
    if sender is None:
        raise NotFound(thing="Account")
    return _transfer(
        actor=approver,
        sender=sender,
        to_account_id=str(original["from_account_id"]),
        amount_paise=amount_paise,
        idempotency_key=idempotency_key,
        note=note or f"Reversal of {original['_id']}",
        request_id=request_id,
        kind=TransactionKind.REVERSAL,
        requested_by=requested_by,
        reverses=original["_id"],
    )


def _transfer(
    *,
    actor,
    sender: dict,
    to_account_id,
    amount_paise,
    idempotency_key,
    note,
    request_id,
    kind,
    requested_by=None,
    reverses: ObjectId | None = None,
):
    # Callers that do not pass one (staff pages, commands) still get the request's id.
    request_id = request_id or current_request_id()
    receiver_oid = parse_object_id(to_account_id)
    if receiver_oid is None:
        raise ValidationFailed("toAccount must be an account id (24 hexadecimal characters).", field="toAccount")
    if receiver_oid == sender["_id"]:
        raise exc.SelfTransfer()
    # The recipient is not looked up here: whether it exists, is ACTIVE and uses the sender's
    # currency is judged inside the money transaction, and every "no" there is the same
    # recorded refusal (exc.RecipientUnavailable), so no answer tells which accounts exist.

    # Tracing (aegis/tracing.py; nothing when off): this span and one per step below, claim,
    # money transaction, each attempt, record of a refusal; the commit is aegis.mongo's.
    with span("transfer", **{"aegis.transfer.kind": str(kind)}):
        fp = fingerprint(kind=kind, to_account_id=receiver_oid, amount_paise=amount_paise)
        claimed = None
        # One deadline for the whole transfer, and it bounds every command (pymongo.timeout), so a
        # single hung command (a `w: majority` write has no wtimeout) cannot outlive it.
        deadline = time.monotonic() + settings.AEGIS_TRANSFER_DEADLINE_SECONDS
        try:
            with pymongo.timeout(settings.AEGIS_TRANSFER_DEADLINE_SECONDS), span("transfer.claim"):
                claimed = _claim(
                    sender=sender,
                    receiver_oid=receiver_oid,
                    amount_paise=amount_paise,
                    key=idempotency_key,
                    note=note,
                    fp=fp,
                    kind=kind,
                    actor=actor,
                    requested_by=requested_by,
                    reverses=reverses,
                )
            if isinstance(claimed, TransferResult):
                annotate(**{"aegis.transfer.replayed": True, "aegis.transaction_id": str(claimed.transaction["_id"])})
                return claimed  # a replay of a COMPLETED transfer
            annotate(**{"aegis.transaction_id": str(claimed["_id"])})
            # Not inside the bound above: run_transaction applies the rest of it per command, so
            # that an abort can still be sent once it has run out.
            return _execute(claimed, request_id=request_id, deadline=deadline)
        except TransactionDeadlineExceeded:
            # Not a business failure: conflicts or unknown commit results outlasted the deadline.
            logger.warning("transfer with key %r: the deadline ran out", idempotency_key)
            _release_claim(claimed)
            raise exc.TransferBusy() from None
        except PyMongoError:
            # The database failed us outside a transaction's own retries (a dropped connection, a
            # failover, a timeout). Whatever happened is safe to retry with the same key; say so,
            # never a 500, and free the claim so that retry is not told "in flight" for a lease.
            logger.exception("transfer with key %r: database error", idempotency_key)
            _release_claim(claimed)
            raise exc.TransferBusy() from None


# --- step 2: the idempotency claim ------------------------------------------------------------


def _lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.AEGIS_TRANSFER_LEASE_SECONDS)


def _claim(
    *, sender, receiver_oid, amount_paise, key, note, fp, kind, actor, requested_by, reverses=None
) -> dict | TransferResult:
    transactions = collection(Transaction)
    now = now_ms()
    doc = {
        "_id": ObjectId(),
        "from_account_id": sender["_id"],
        "to_account_id": receiver_oid,
        "amount": Int64(amount_paise),
        "currency": sender["currency"],
        "note": note,
        "kind": kind,
        "status": TransactionStatus.PROCESSING,
        "retry_count": 0,
        # The terminal status the statistics last counted this record as (its events carry it as
        # `previousStatus`): none yet. See transfers/rollups.py.
        "counted_status": "",
        "failure_reason": "",
        "failure_code": "",
        "idempotency_key": key,
        "fingerprint": fp,
        "attempt_id": uuid.uuid4().hex,
        "lease_expires_at": _lease_until(now),
        "initiated_by": str(actor.pk),
        # The person behind it: the staff member for a console funding, else the initiator.
        "requested_by": str((requested_by or actor).pk),
        "reverses_id": reverses,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }
    try:
        transactions.insert_one(doc)
        return doc
    except DuplicateKeyError:
        pass
    existing = _idempotency_reads().find_one({"idempotency_key": key, "from_account_id": sender["_id"]})
    if existing is None:  # a unique-index hit always has a holder; a rollback could still remove it
        raise exc.TransferBusy()
    if existing["fingerprint"] != fp:
        raise exc.IdempotencyKeyReused()
    return _reclaim(existing, requested_by=str((requested_by or actor).pk))


def _reclaim(existing: dict, *, requested_by: str = "") -> dict | TransferResult:
    """Answer for a key seen before, or take it over for the next attempt by one atomic update."""
    transactions = collection(Transaction)
    status = existing["status"]
    if status == TransactionStatus.COMPLETED:
        return TransferResult(existing, replayed=True)
    now = now_ms()
    attempt_id = uuid.uuid4().hex
    if status == TransactionStatus.FAILED:
        if existing["retry_count"] >= MAX_USER_RETRIES:
            raise exc.RetriesExhausted(existing)
        guard = {"_id": existing["_id"], "status": TransactionStatus.FAILED, "retry_count": {"$lt": MAX_USER_RETRIES}}
        counted = {"counted_status": TransactionStatus.FAILED}  # its FAILED event was counted
    else:  # PROCESSING: only a claim whose lease ran out (its holder died) may be taken over
        # The client is tz_aware (DATABASES OPTIONS), so stored instants compare with `now` as they are.
        if existing.get("lease_expires_at") and existing["lease_expires_at"] > now:
            raise exc.TransferInFlight()
        guard = {
            "_id": existing["_id"],
            "status": TransactionStatus.PROCESSING,
            "attempt_id": existing["attempt_id"],
            "lease_expires_at": {"$lt": now},
        }
        counted = {}  # a takeover settles nothing: what was counted stays as it was
    try:
        claimed = transactions.find_one_and_update(
            guard,
            {
                "$set": {
                    "status": TransactionStatus.PROCESSING,
                    "attempt_id": attempt_id,
                    "lease_expires_at": _lease_until(now),
                    "failure_reason": "",
                    "failure_code": "",
                    "failure_detail": "",
                    "requested_by": requested_by or existing.get("requested_by", ""),
                    "updated_at": now,
                    **counted,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
    except OperationFailure as failure:
        if failure.code == WRITE_CONFLICT:  # the holder's transaction is still open: in flight
            raise exc.TransferInFlight() from None
        raise
    if claimed is not None:
        return claimed
    # Someone else changed it first (a concurrent retry won the claim): answer by the new state.
    current = _idempotency_reads().find_one({"_id": existing["_id"]})
    if current is None:
        raise exc.TransferBusy()
    if current["status"] == TransactionStatus.COMPLETED:
        return TransferResult(current, replayed=True)
    if current["status"] == TransactionStatus.FAILED and current["retry_count"] >= MAX_USER_RETRIES:
        raise exc.RetriesExhausted(current)
    raise exc.TransferInFlight()


def _idempotency_reads():
    """Transactions read with majority read concern, for every answer given about a key.

    A replay must only ever return what a majority holds: on a replica set a default (local)
    read could return a result that a failover later rolls back.
    """
    return collection(Transaction).with_options(read_concern=ReadConcern("majority"))


# --- step 3: the money transaction ------------------------------------------------------------


class _ClaimLost(Exception):
    """Our claim was settled by someone else (recovery after our lease ran out)."""


def _execute(txn: dict, *, request_id: str, deadline: float) -> TransferResult:
    """Run the money transaction for a claim we hold; a refusal is recorded as FAILED.

    If our claim was settled by someone else meanwhile (recovery after our lease ran out, then
    a retry), the answer is the record's current state, never our own stale view of it.
    """
    try:
        try:
            # Gate on: this host's workers take the two accounts in turn; the database queues the rest.
            gated = settings.AEGIS_TRANSFER_GATE
            order = _WriteOrder() if gated else None
            accounts = (txn["from_account_id"], txn["to_account_id"])
            with (
                span("transfer.money_transaction", **{"aegis.transfer.gated": bool(gated)}),
                host_gate(accounts, deadline=deadline) if gated else nullcontext(),
            ):
                completed = run_transaction(
                    traced_attempts(
                        "transfer.attempt",
                        lambda session: _move_money(session, txn, request_id=request_id, order=order),
                    ),
                    deadline_seconds=deadline - time.monotonic(),
                )
            return TransferResult(completed)
        except exc.TransferRejected as refusal:
            # Recording the refusal gets at least a moment, even when the refusal came late.
            failed = _record_failure(
                txn,
                refusal,
                request_id=request_id,
                deadline_seconds=max(deadline - time.monotonic(), RECORD_FAILURE_MIN_SECONDS),
            )
            raise exc.TransferFailed(failed, refusal) from None
    except _ClaimLost:
        return _answer_for(txn["_id"])


def _release_claim(txn: dict | None) -> None:
    """Let a same-key retry take the claim over now instead of after the lease.

    Runs outside the transfer's timeout (which may be what just ran out). Conditional on our
    attempt still holding a PROCESSING claim: if our last commit did land, the record is
    COMPLETED, nothing changes, and the retry replays it. Money only moves in the transaction
    that settles the claim on `attempt_id`, so an early release can never move it twice.
    """
    if not isinstance(txn, dict):
        return
    try:
        with pymongo.timeout(5):
            collection(Transaction).update_one(
                {"_id": txn["_id"], "status": TransactionStatus.PROCESSING, "attempt_id": txn["attempt_id"]},
                {"$set": {"lease_expires_at": now_ms()}},
            )
    except PyMongoError:  # the lease still runs out by itself
        logger.warning("transfer %s: could not release the claim early", txn["_id"])


def _answer_for(txn_id: ObjectId) -> TransferResult:
    current = _idempotency_reads().find_one({"_id": txn_id})
    if current is None:
        raise exc.TransferBusy()
    if current["status"] == TransactionStatus.COMPLETED:
        return TransferResult(current, replayed=True)
    if current["status"] == TransactionStatus.FAILED:
        raise exc.TransferFailed(current, exc.TransferRejected(current["failure_reason"] or None))
    raise exc.TransferInFlight()


@dataclass
class _WriteOrder:
    """Which account document a money transaction writes first; one per transfer, across its retries.

    With the gate on (DESIGN deviation, docs/transfer-engine.md "Hot accounts"), the two account
    documents are the transaction's first writes: a conflict is met on the first or second
    command, before anything else was done, and the retry queues on the server behind the holder
    (aegis.mongo.queue_on_conflict). The account it queued for goes first next time, so the
    retry's snapshot starts at the moment it takes that account, not before.
    """

    credit_first: bool = False

    def after_wait(self, txn: dict, busy_account) -> None:
        self.credit_first = busy_account == txn["to_account_id"]


def _move_money(session, txn: dict, *, request_id: str, order: _WriteOrder | None = None) -> dict:
    """The one money transaction: both balances, both ledger entries, the settled claim, the
    audit entry and the outbox event commit together or not at all.

    Gate on (`order` given): the contended account documents first, each under
    `queue_on_conflict`, so whoever holds one makes us wait instead of throwing work away.
    Gate off (AEGIS_TRANSFER_GATE=off, the optimistic protocol kept as the benchmark's baseline):
    the account documents last, so a transaction holds them as briefly as possible, and
    conflicts are backed off and retried.
    """
    now = now_ms()
    if order is None:
        settled = _settle_claim(session, txn, request_id=request_id, now=now)
        sender, receiver = _debit(session, txn, now), _credit(session, txn, now)
    else:

        def first_write(write, account_id):
            try:
                with queue_on_conflict(collection(Account), account_id):
                    return write(session, txn, now)
            except DocumentBusy:
                order.after_wait(txn, account_id)
                raise

        if order.credit_first:
            receiver = first_write(_credit, txn["to_account_id"])
            sender = first_write(_debit, txn["from_account_id"])
        else:
            sender = first_write(_debit, txn["from_account_id"])
            receiver = first_write(_credit, txn["to_account_id"])
        settled = _settle_claim(session, txn, request_id=request_id, now=now)
    ledger_post_pair(session, txn=txn, debited=sender, credited=receiver)
    if txn["kind"] == TransactionKind.REVERSAL:
        _link_reversal(session, txn)
    return settled


def _link_reversal(session, txn: dict) -> None:
    """Add a reversal to its original, in its money transaction: the original's reversed total
    never exceeds its amount. Two reversals of one original write the same document, so the
    second waits or retries on a write conflict and reads the first one's total here."""
    transactions = collection(Transaction)
    original = transactions.find_one(
        {"_id": txn["reverses_id"]}, {"amount": 1, "status": 1, "reversed_amount": 1}, session=session
    )
    if original is None or original["status"] != TransactionStatus.COMPLETED:
        raise exc.ReversalExceedsOriginal()
    if int(original.get("reversed_amount") or 0) + txn["amount"] > original["amount"]:
        raise exc.ReversalExceedsOriginal()
    linked = transactions.update_one(
        {"_id": original["_id"], "reversed_amount": original.get("reversed_amount")},
        {"$inc": {"reversed_amount": Int64(txn["amount"])}, "$push": {"reversed_by": txn["_id"]}},
        session=session,
    )
    if linked.matched_count != 1:
        raise exc.ReversalExceedsOriginal()


# (completed, failed) audit actions of each kind.
_AUDIT_ACTIONS = {
    TransactionKind.TRANSFER: (AuditAction.TRANSFER_SUCCESS, AuditAction.TRANSFER_FAILED),
    TransactionKind.SYSTEM_FUNDING: (AuditAction.SYSTEM_TRANSFER_SUCCESS, AuditAction.SYSTEM_TRANSFER_FAILED),
    TransactionKind.REVERSAL: (AuditAction.REVERSAL_COMPLETED, AuditAction.REVERSAL_FAILED),
}


def _settle_claim(session, txn: dict, *, request_id: str, now: datetime) -> dict:
    """COMPLETED on our claim (or _ClaimLost: recovery took it over), its audit entry and event."""
    completion = {
        "status": TransactionStatus.COMPLETED,
        "completed_at": now,
        "updated_at": now,
        "lease_expires_at": None,
        "failure_reason": "",
        "failure_code": "",
        "failure_detail": "",
    }
    claim = collection(Transaction).update_one(
        {"_id": txn["_id"], "status": TransactionStatus.PROCESSING, "attempt_id": txn["attempt_id"]},
        {"$set": completion},
        session=session,
    )
    if claim.matched_count != 1:
        raise _ClaimLost()
    settled = {**txn, **completion}
    action = _AUDIT_ACTIONS[txn["kind"]][0]
    audit_append(
        session,
        action=action,
        status="SUCCESS",
        user_id=txn["initiated_by"],
        actor_id=_actor_of(txn),
        transaction_id=str(txn["_id"]),
        details=_audit_details(txn),
        request_id=request_id,
        now=now,
    )
    _event_append(session, "transaction.completed", settled, request_id, now)
    return settled


# What ledger_post_pair needs of an account the posting left: its balance, seq, entry time and
# chain head (still the previous entry's hash: the posting's $inc does not touch it).
POSTED_FIELDS = {"balance": 1, "ledger_seq": 1, "ledger_at": 1, "ledger_head": 1}


def _posting_stamp(now: datetime) -> dict:
    """`ledger_at` never goes back (`$max`): a posting that read its clock before a later-stamped
    one committed on the same account (a wait in the gate, another host's clock) is stamped at
    that one's time, so the account's entries stay in time order (Account.ledger_at)."""
    return {"$set": {"updated_at": now}, "$max": {"ledger_at": now}}


# The statuses an account may have on either leg. A reversal may take from and return to a
# frozen account (freezing stops its owner, not the bank's correction of a transfer); never a closed one.
_LEG_STATUSES = {False: (AccountStatus.ACTIVE,), True: (AccountStatus.ACTIVE, AccountStatus.FROZEN)}


def _leg_status(txn: dict):
    allowed = _LEG_STATUSES[txn["kind"] == TransactionKind.REVERSAL]
    return allowed[0] if len(allowed) == 1 else {"$in": list(allowed)}


def _debit(session, txn: dict, now: datetime) -> dict:
    """The guarded debit: the sender is ACTIVE (or FROZEN, for a reversal) and, unless it is the
    system account, can afford it."""
    accounts = collection(Account)
    amount = txn["amount"]
    debit_guard = {"_id": txn["from_account_id"], "status": _leg_status(txn)}
    if txn["kind"] != TransactionKind.SYSTEM_FUNDING:  # the system account may go negative; nobody else may
        debit_guard["balance"] = {"$gte": amount}
    sender = accounts.find_one_and_update(
        debit_guard,
        {"$inc": {"balance": Int64(-amount), "ledger_seq": Int64(1)}, **_posting_stamp(now)},
        projection=POSTED_FIELDS,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if sender is None:
        current = accounts.find_one({"_id": txn["from_account_id"]}, {"status": 1}, session=session)
        if current is None or current["status"] not in _LEG_STATUSES[txn["kind"] == TransactionKind.REVERSAL]:
            raise exc.SenderNotActive()
        raise exc.InsufficientFunds()
    return sender


def _credit(session, txn: dict, now: datetime) -> dict:
    """The guarded credit: the receiver exists, is ACTIVE (or FROZEN, for a reversal) and uses the
    transfer's currency."""
    receiver = collection(Account).find_one_and_update(
        {"_id": txn["to_account_id"], "status": _leg_status(txn), "currency": txn["currency"]},
        {"$inc": {"balance": Int64(txn["amount"]), "ledger_seq": Int64(1)}, **_posting_stamp(now)},
        projection=POSTED_FIELDS,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if receiver is None:
        raise exc.RecipientUnavailable(reason=_why_not_receiving(session, txn))
    return receiver


def _why_not_receiving(session, txn: dict) -> str:
    """The real reason a recipient refused a credit: for the audit entry and staff, never the sender."""
    account = collection(Account).find_one({"_id": txn["to_account_id"]}, {"status": 1, "currency": 1}, session=session)
    if account is None:
        return "receiver_unknown"
    if account["currency"] != txn["currency"]:
        return "currency_mismatch"
    return f"receiver_{str(account['status']).lower()}"


def _actor_of(txn: dict) -> str:
    # Records from before `requested_by` existed were always the initiator's own.
    return txn.get("requested_by") or txn["initiated_by"]


def _audit_details(txn: dict, **extra) -> dict:
    return {
        "fromAccount": str(txn["from_account_id"]),
        "toAccount": str(txn["to_account_id"]),
        "amount": int(txn["amount"]),
        "idempotencyKey": txn["idempotency_key"],
        **extra,
    }


def _event_append(session, event_type: str, txn: dict, request_id: str, now: datetime) -> None:
    """The settlement's outbox event, ordered by the sender's account."""
    payload = {
        "transactionId": str(txn["_id"]),
        "fromAccount": str(txn["from_account_id"]),
        "toAccount": str(txn["to_account_id"]),
        "amount": int(txn["amount"]),
        "status": txn["status"],
        "retryCount": txn["retry_count"],
        "failureReason": txn.get("failure_reason", ""),
        "requestId": request_id,
        # What the statistics rollup needs (transfers/rollups.py): the kind, the IST day of
        # creation, and what this record was counted as before this settlement.
        "kind": txn.get("kind", TransactionKind.TRANSFER),
        "createdAt": txn["created_at"].isoformat(),
        "previousStatus": txn.get("counted_status") or "",
    }
    outbox_append(session, event_type=event_type, aggregate_id=txn["from_account_id"], payload=payload, now=now)


# --- step 4: recording a business failure -----------------------------------------------------


def _record_failure(txn: dict, refusal: exc.TransferRejected, *, request_id: str, deadline_seconds: float) -> dict:
    """FAILED + retry_count + 1 + audit + outbox event, in one transaction, if we still hold the claim."""
    action = _AUDIT_ACTIONS[txn["kind"]][1]
    # What only the audit log and staff see (e.g. why a recipient refused); the sender sees the code.
    detail = getattr(refusal, "reason", refusal.code)

    def write(session):
        now = now_ms()
        failed = collection(Transaction).find_one_and_update(
            {"_id": txn["_id"], "status": TransactionStatus.PROCESSING, "attempt_id": txn["attempt_id"]},
            {
                "$set": {
                    "status": TransactionStatus.FAILED,
                    "failure_reason": refusal.message,
                    "failure_code": refusal.code,
                    "failure_detail": detail,
                    "lease_expires_at": None,
                    "updated_at": now,
                },
                "$inc": {"retry_count": 1},
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if failed is None:
            raise _ClaimLost()
        audit_append(
            session,
            action=action,
            status="FAILURE",
            user_id=txn["initiated_by"],
            actor_id=_actor_of(txn),
            transaction_id=str(txn["_id"]),
            details=_audit_details(txn, reason=detail),
            request_id=request_id,
            now=now,
        )
        _event_append(session, "transaction.failed", failed, request_id, now)
        return failed

    # _ClaimLost propagates: the record is someone else's now, and _execute answers by its state.
    with span("transfer.record_failure", **{"aegis.transfer.failure_code": refusal.code}):
        return run_transaction(traced_attempts("transfer.attempt", write), deadline_seconds=deadline_seconds)


# --- step 5: recovery of claims whose holder died ---------------------------------------------

INTERRUPTED_REASON = "The transfer was interrupted before it completed; no money moved. Retry with the same key."


def transfers_recover_stale(*, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Settle PROCESSING claims whose lease ran out: FAILED (interrupted), no money moved.

    Safe against a holder that is only slow, not dead: its money transaction settles the claim
    conditionally on `attempt_id`, so whichever commits first wins and the other changes
    nothing. Interruption is not the user's failure, so `retry_count` is not increased.
    """
    now = now or now_ms()
    stale = list(
        collection(Transaction)
        .find(
            {"status": TransactionStatus.PROCESSING, "lease_expires_at": {"$lt": now}},
            {"_id": 1, "attempt_id": 1},
        )
        .limit(limit)
    )
    counts = {"found": len(stale), "recovered": 0, "skipped": 0}
    for item in stale:
        try:
            recovered = run_transaction(
                lambda session, item=item: _settle_interrupted(session, item, now),
                deadline_seconds=settings.AEGIS_TRANSFER_DEADLINE_SECONDS,
            )
        except TransactionDeadlineExceeded:
            # Typically a dead worker's transaction still holds the record until the server
            # aborts it (its transaction lifetime); the next sweep gets it.
            counts["skipped"] += 1
            continue
        counts["recovered" if recovered else "skipped"] += 1
    return counts


def _settle_interrupted(session, item: dict, now: datetime) -> bool:
    settled = collection(Transaction).find_one_and_update(
        {
            "_id": item["_id"],
            "status": TransactionStatus.PROCESSING,
            "attempt_id": item["attempt_id"],
            "lease_expires_at": {"$lt": now},
        },
        {
            "$set": {
                "status": TransactionStatus.FAILED,
                "failure_reason": INTERRUPTED_REASON,
                "failure_code": "interrupted",
                "lease_expires_at": None,
                "updated_at": now_ms(),
            }
        },
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if settled is None:
        return False
    audit_append(
        session,
        action=AuditAction.TRANSFER_RECOVERED,
        status="FAILURE",
        user_id=settled["initiated_by"],
        transaction_id=str(settled["_id"]),
        details=_audit_details(settled, reason="interrupted"),
    )
    _event_append(session, "transaction.failed", settled, "", now_ms())
    return True
