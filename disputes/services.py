"""Disputes and reversals: a customer disputes a transfer they sent; staff propose a reversal
(the maker), a different staff member approves it (the checker), and the engine returns the
money from the original's receiver to its sender (transfers.services.reversal_execute).

Each step is one MongoDB transaction with its audit entry (and its outbox event when a customer
should hear of it). What keeps money safe:
- the total of all live proposals for one original never exceeds its amount: a proposal
  reserves its amount on the original's `ReversalReservation` by a guarded `$inc`, and a
  rejection, expiry or cancellation gives it back in the transaction that ends the proposal;
- a proposal is approved once (PENDING -> APPROVED is one conditional update), by someone other
  than its proposer, before it expires;
- its reversal runs under the idempotency key `reversal-<proposal id>`, so running it again
  (a retry, two approvers racing, a crash between approval and execution) moves money once;
- the engine itself refuses a reversal that would take the original's reversed total past its
  amount, in the money transaction (the last line, whatever the proposals say).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bson import Int64, ObjectId
from django.conf import settings
from pymongo import ReturnDocument
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure

from accounts.models import User
from accounts.selectors import account_for_user
from aegis.clock import now_ms
from aegis.errors import AegisError, BusinessRuleViolation, Conflict, NotFound, PermissionDenied, ValidationFailed
from aegis.ids import parse_object_id
from aegis.money import MAX_TRANSFER_PAISE, format_inr
from aegis.mongo import TransactionDeadlineExceeded, collection, run_transaction
from disputes.models import (
    FINAL_DISPUTE_STATES,
    OPEN_SLOT,
    Dispute,
    DisputeReason,
    DisputeState,
    ProposalState,
    ReversalProposal,
    ReversalReservation,
)
from disputes.selectors import dispute_refusal
from events.services import outbox_append
from ledger.models import AuditAction
from ledger.services import audit_append
from transfers import exceptions as exc
from transfers.models import MAX_USER_RETRIES, Transaction, TransactionKind, TransactionStatus
from transfers.services import REVERSAL_KEY_PREFIX, TransferResult, reversal_execute

logger = logging.getLogger("aegis.disputes")

MAX_NOTE_LENGTH = 500
# Proposals that may still move money.
LIVE_STATES = (ProposalState.PENDING, ProposalState.APPROVED, ProposalState.FAILED)
EXPIRE_BATCH = 100


class DisputeNotAllowed(BusinessRuleViolation):
    code = "dispute_not_allowed"


class DisputeExists(Conflict):
    code = "dispute_exists"
    message = "This transfer already has an open dispute."


class ReversalTooLarge(BusinessRuleViolation):
    code = "reversal_too_large"
    message = "Only {left} of this transaction is left to reverse."


class ProposalExpired(BusinessRuleViolation):
    code = "proposal_expired"
    message = "This proposal expired before it was approved; propose the reversal again."


class ProposalDecided(Conflict):
    code = "proposal_decided"
    message = "This proposal is {state} now; reload to see it."


def _in_transaction(write):
    """run_transaction with this module's deadline; a database that could not confirm the change
    in time is a 503 asking to try again (every step here is safe to repeat), never a 500."""
    try:
        return run_transaction(write, deadline_seconds=settings.AEGIS_TRANSFER_DEADLINE_SECONDS)
    except (TransactionDeadlineExceeded, ConnectionFailure, OperationFailure) as error:
        if isinstance(error, DuplicateKeyError):
            raise
        logger.warning("disputes: a transaction could not be confirmed: %s", error)
        raise exc.TransferBusy("Aegis could not confirm this just now; try again (nothing is done twice).") from None


def _note(value, *, field: str = "note") -> str:
    text = " ".join(str(value or "").split()) if isinstance(value, str | type(None)) else None
    if text is None or len(text) > MAX_NOTE_LENGTH:
        raise ValidationFailed(f"{field} must be text of at most {MAX_NOTE_LENGTH} characters.", field=field)
    return text


def _staff_only(user: User) -> None:
    if not getattr(user, "is_admin", False):
        raise PermissionDenied("Only staff can do this.")


def _transaction(transaction_id) -> dict:
    oid = parse_object_id(transaction_id)
    txn = collection(Transaction).find_one({"_id": oid}) if oid else None
    if txn is None:
        raise NotFound(thing="Transaction")
    return txn


def _dispute_event(session, dispute: dict, *, now: datetime, request_id: str = "") -> None:
    """Tell the customer (notifications) that their dispute changed state."""
    payload = {
        "disputeId": str(dispute["_id"]),
        "transactionId": str(dispute["transaction_id"]),
        "userId": str(dispute["user_id"]),
        "state": dispute["state"],
        "answer": dispute.get("staff_answer", ""),
        "requestId": request_id,
    }
    event = "dispute.opened" if dispute["state"] == DisputeState.OPEN else "dispute.updated"
    outbox_append(session, event_type=event, aggregate_id=dispute["account_id"], payload=payload, now=now)


# --- the customer's side ------------------------------------------------------------------------


def dispute_open(*, user: User, transaction_id, reason: str, note: str = "", request_id: str = "") -> dict:
    """Dispute a COMPLETED transfer the user sent, within AEGIS_DISPUTE_WINDOW_DAYS of completing.

    Someone else's (or an unknown) transaction is NotFound, as everywhere; a funding, a reversal,
    an unfinished, too old or wholly reversed transfer is DisputeNotAllowed (422,
    disputes.selectors.dispute_refusal); a second open dispute on the
    same transfer is DisputeExists (409, the unique (transaction, slot) index decides races).
    """
    if reason not in DisputeReason.values:
        raise ValidationFailed(f"reason must be one of {', '.join(DisputeReason.values)}.", field="reason")
    note = _note(note)
    txn = _transaction(transaction_id)
    account = account_for_user(user=user) if user.is_authenticated else None
    if account is None or txn["from_account_id"] != account.pk:
        raise NotFound(thing="Transaction")
    refusal = dispute_refusal(txn)
    if refusal:
        raise DisputeNotAllowed(refusal)
    now = now_ms()
    dispute = {
        "_id": ObjectId(),
        "transaction_id": txn["_id"],
        "account_id": account.pk,
        "user_id": user.pk,
        "reason": reason,
        "note": note,
        "state": DisputeState.OPEN,
        "staff_answer": "",
        "slot": OPEN_SLOT,
        "opened_at": now,
        "updated_at": now,
        "resolved_at": None,
    }

    def write(session):
        collection(Dispute).insert_one(dispute, session=session)
        audit_append(
            session,
            action=AuditAction.DISPUTE_OPENED,
            status="SUCCESS",
            user_id=str(user.pk),
            transaction_id=str(txn["_id"]),
            details={"disputeId": str(dispute["_id"]), "reason": reason, "note": note},
            request_id=request_id,
            now=now,
        )
        _dispute_event(session, dispute, now=now, request_id=request_id)

    try:
        _in_transaction(write)
    except DuplicateKeyError:
        raise DisputeExists() from None
    return dispute


# --- staff: propose, approve, reject, retry, cancel, expire ----------------------------------------


def _reservation(original: dict) -> None:
    """The original's reservation document, made once (a racing maker finds it there)."""
    try:
        collection(ReversalReservation).insert_one(
            {
                "original_id": original["_id"],
                "amount": Int64(original["amount"]),
                "reserved": Int64(0),
                "updated_at": now_ms(),
            }
        )
    except DuplicateKeyError:
        pass


def _release(session, proposal: dict, now: datetime) -> None:
    collection(ReversalReservation).update_one(
        {"original_id": proposal["original_id"]},
        {"$inc": {"reserved": Int64(-proposal["amount"])}, "$set": {"updated_at": now}},
        session=session,
    )


def reversal_propose(
    *, staff: User, transaction_id, amount_paise: int, note: str = "", dispute_id=None, request_id: str = ""
) -> dict:
    """Propose returning `amount_paise` of a COMPLETED transfer or funding to its sender (the maker).

    Refused when what is left to reverse (the amount less every live proposal) is smaller:
    ReversalTooLarge (422). With `dispute_id`, the dispute must be about that transaction and not
    final; it goes UNDER_REVIEW. Nothing moves until another staff member approves.
    """
    _staff_only(staff)
    note = _note(note)
    if isinstance(amount_paise, bool) or not isinstance(amount_paise, int) or amount_paise <= 0:
        raise ValidationFailed("amount must be a positive number of rupees.", field="amount")
    if amount_paise > MAX_TRANSFER_PAISE:
        raise ValidationFailed(f"amount must be at most {format_inr(MAX_TRANSFER_PAISE)}.", field="amount")
    original = _transaction(transaction_id)
    if original["kind"] == TransactionKind.REVERSAL or original["status"] != TransactionStatus.COMPLETED:
        raise BusinessRuleViolation("Only a completed transfer or funding can be reversed.")
    dispute = None
    if dispute_id not in (None, ""):
        oid = parse_object_id(dispute_id)
        dispute = collection(Dispute).find_one({"_id": oid}) if oid else None
        if dispute is None or dispute["transaction_id"] != original["_id"]:
            raise NotFound(thing="Dispute")
        if dispute["state"] in FINAL_DISPUTE_STATES:
            raise BusinessRuleViolation("This dispute is already closed.")
    proposals_expire()  # an expired proposal's reservation is free again before we reserve
    _reservation(original)
    now = now_ms()
    proposal = {
        "_id": ObjectId(),
        "original_id": original["_id"],
        "dispute_id": dispute["_id"] if dispute else None,
        "amount": Int64(amount_paise),
        "note": note,
        "state": ProposalState.PENDING,
        "proposed_by": str(staff.pk),
        "proposed_at": now,
        "expires_at": now + timedelta(hours=settings.AEGIS_REVERSAL_PROPOSAL_HOURS),
        "decided_by": "",
        "decided_at": None,
        "decision_note": "",
        "reversal_id": "",
        "failure_reason": "",
        "updated_at": now,
    }

    def write(session):
        # Read by its plain original index, then written by _id with the value read: a concurrent
        # proposal writes the same document, so one of two waits on the conflict and re-reads.
        reservations = collection(ReversalReservation)
        current = reservations.find_one({"original_id": original["_id"]}, {"reserved": 1}, session=session)
        left = int(original["amount"]) - int(current["reserved"])
        if amount_paise > left:
            raise ReversalTooLarge(left=format_inr(max(0, left)))
        reserved = reservations.update_one(
            {"_id": current["_id"], "reserved": current["reserved"]},
            {"$inc": {"reserved": Int64(amount_paise)}, "$set": {"updated_at": now}},
            session=session,
        )
        if reserved.matched_count != 1:
            raise ReversalTooLarge(left=format_inr(max(0, left - amount_paise)))
        if dispute is not None:  # one proposal at a time per dispute: its outcome decides the dispute
            others = collection(ReversalProposal).find({"dispute_id": dispute["_id"]}, {"state": 1}, session=session)
            if any(p["state"] in LIVE_STATES for p in others):
                raise BusinessRuleViolation("This dispute already has a reversal in progress; decide that one first.")
        collection(ReversalProposal).insert_one(proposal, session=session)
        if dispute is not None:
            reviewed = collection(Dispute).find_one_and_update(
                {"_id": dispute["_id"], "state": {"$in": [DisputeState.OPEN, DisputeState.UNDER_REVIEW]}},
                {"$set": {"state": DisputeState.UNDER_REVIEW, "updated_at": now}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if reviewed is None:
                raise BusinessRuleViolation("This dispute is already closed.")
            if dispute["state"] == DisputeState.OPEN:
                _dispute_event(session, reviewed, now=now, request_id=request_id)
        audit_append(
            session,
            action=AuditAction.REVERSAL_PROPOSED,
            status="SUCCESS",
            user_id=original["initiated_by"],
            actor_id=str(staff.pk),
            transaction_id=str(original["_id"]),
            details=_proposal_details(proposal),
            request_id=request_id,
            now=now,
        )

    _in_transaction(write)
    return proposal


def _proposal_details(proposal: dict, **extra) -> dict:
    return {
        "proposalId": str(proposal["_id"]),
        "amount": int(proposal["amount"]),
        "disputeId": str(proposal["dispute_id"] or ""),
        "proposedBy": proposal["proposed_by"],
        **extra,
    }


def _proposal(proposal_id) -> dict:
    oid = parse_object_id(proposal_id)
    proposal = collection(ReversalProposal).find_one({"_id": oid}) if oid else None
    if proposal is None:
        raise NotFound(thing="Proposal")
    return proposal


def _not_the_maker(staff: User, proposal: dict, doing: str) -> None:
    if proposal["proposed_by"] == str(staff.pk):
        raise PermissionDenied(f"You proposed this reversal; a different staff member must {doing} it.")


def reversal_approve(*, staff: User, proposal_id, note: str = "", request_id: str = "") -> dict:
    """Approve a PENDING, unexpired proposal made by someone else (the checker), then run it.

    Returns the proposal as it ends: EXECUTED (the money moved, a dispute resolved), FAILED (the
    reversal was refused, e.g. the receiver lacks the funds; the reason is on it, a dispute stays
    open; `reversal_retry` runs it again), or APPROVED when the engine could not confirm the
    outcome (TransferBusy is raised; a retry settles it, exactly once).
    """
    _staff_only(staff)
    note = _note(note)
    proposal = _proposal(proposal_id)
    _not_the_maker(staff, proposal, "approve")
    _maker_of(proposal)  # before the decision: an approval nobody can carry out would hold its amount
    now = now_ms()

    def write(session):
        approved = collection(ReversalProposal).find_one_and_update(
            {
                "_id": proposal["_id"],
                "state": ProposalState.PENDING,
                "expires_at": {"$gt": now},
                "proposed_by": {"$ne": str(staff.pk)},
            },
            {
                "$set": {
                    "state": ProposalState.APPROVED,
                    "decided_by": str(staff.pk),
                    "decided_at": now,
                    "decision_note": note,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if approved is None:
            return None
        audit_append(
            session,
            action=AuditAction.REVERSAL_APPROVED,
            status="SUCCESS",
            user_id=_original_owner(proposal),
            actor_id=str(staff.pk),
            transaction_id=str(proposal["original_id"]),
            details=_proposal_details(proposal, note=note),
            request_id=request_id,
            now=now,
        )
        return approved

    approved = _in_transaction(write)
    if approved is None:
        current = _proposal(proposal_id)
        if current["state"] == ProposalState.PENDING:
            proposals_expire()
            raise ProposalExpired()
        raise ProposalDecided(state=ProposalState(current["state"]).label.lower())
    return _execute(approved, approver=staff, request_id=request_id)


def reversal_retry(*, staff: User, proposal_id, request_id: str = "") -> dict:
    """Run an approved proposal's reversal again (after it FAILED, or when its outcome was not
    confirmed): the same idempotency key, so at most one reversal ever completes for it."""
    _staff_only(staff)
    proposal = _proposal(proposal_id)
    _not_the_maker(staff, proposal, "retry")
    if proposal["state"] not in (ProposalState.APPROVED, ProposalState.FAILED):
        raise ProposalDecided(state=ProposalState(proposal["state"]).label.lower())
    # Who pushed it again: the engine's entry names the first checker (the claim keeps its initiator).
    audit_append(
        None,
        action=AuditAction.REVERSAL_RETRIED,
        status="SUCCESS",
        user_id=_original_owner(proposal),
        actor_id=str(staff.pk),
        transaction_id=str(proposal["original_id"]),
        details=_proposal_details(proposal, previousState=proposal["state"]),
        request_id=request_id,
    )
    return _execute(proposal, approver=staff, request_id=request_id)


def _original_owner(proposal: dict) -> str:
    original = collection(Transaction).find_one({"_id": proposal["original_id"]}, {"initiated_by": 1})
    return original.get("initiated_by", "") if original else ""


def _maker_of(proposal: dict) -> User:
    """The proposal's maker, still staff: a maker who left (or lost the role) cannot have their
    proposal approved; reject it and propose again."""
    maker = User.objects.filter(pk=ObjectId(proposal["proposed_by"])).first()
    if maker is None or not maker.is_admin:
        raise BusinessRuleViolation("Whoever proposed this is no longer staff; reject it and propose it again.")
    return maker


def _execute(proposal: dict, *, approver: User, request_id: str) -> dict:
    proposer = _maker_of(proposal)
    try:
        result = reversal_execute(
            approver=approver,
            requested_by=proposer,
            original_id=proposal["original_id"],
            amount_paise=int(proposal["amount"]),
            idempotency_key=f"{REVERSAL_KEY_PREFIX}{proposal['_id']}",
            note=f"Reversal of {proposal['original_id']}",
            request_id=request_id,
        )
    except exc.TransferFailed as failed:
        return _mark_failed(proposal, failed.transaction, failed.message)
    except exc.RetriesExhausted as exhausted:
        message = "The reversal failed 3 times; cancel this proposal and resolve the dispute another way."
        return _mark_failed(proposal, exhausted.transaction, message)
    except (exc.TransferBusy, exc.TransferInFlight):
        raise  # not confirmed either way: it stays APPROVED, and Retry settles it under the same key
    except AegisError as refusal:  # refused before any record was written: nothing to retry into
        return _mark_failed(proposal, None, refusal.message)
    return reversal_settle(proposal_id=proposal["_id"], result=result)


def _mark_failed(proposal: dict, reversal: dict | None, reason: str) -> dict:
    now = now_ms()
    return collection(ReversalProposal).find_one_and_update(
        {"_id": proposal["_id"], "state": {"$in": [ProposalState.APPROVED, ProposalState.FAILED]}},
        {
            "$set": {
                "state": ProposalState.FAILED,
                "reversal_id": str(reversal["_id"]) if reversal else "",
                "failure_reason": reason[:200],
                "updated_at": now,
            }
        },
        return_document=ReturnDocument.AFTER,
    ) or _proposal(proposal["_id"])


def reversal_settle(*, proposal_id, result: TransferResult) -> dict:
    """After its reversal COMPLETED: the proposal EXECUTED and its dispute resolved (REVERSED when
    the original is now wholly reversed, PARTIAL otherwise), once, in one transaction."""
    reversal = result.transaction
    now = now_ms()

    def write(session):
        done = collection(ReversalProposal).find_one_and_update(
            {"_id": ObjectId(str(proposal_id)), "state": {"$in": [ProposalState.APPROVED, ProposalState.FAILED]}},
            {
                "$set": {
                    "state": ProposalState.EXECUTED,
                    "reversal_id": str(reversal["_id"]),
                    "failure_reason": "",
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if done is None or done["dispute_id"] is None:
            return done
        original = collection(Transaction).find_one(
            {"_id": done["original_id"]}, {"amount": 1, "reversed_amount": 1}, session=session
        )
        whole = int(original.get("reversed_amount") or 0) >= int(original["amount"])
        state = DisputeState.RESOLVED_REVERSED if whole else DisputeState.RESOLVED_PARTIAL
        # Written for the customer: the maker's and checker's notes are internal.
        answer = f"{format_inr(done['amount'])} was returned to your account."
        resolved = collection(Dispute).find_one_and_update(
            {"_id": done["dispute_id"], "state": {"$nin": list(FINAL_DISPUTE_STATES)}},
            {
                "$set": {
                    "state": state,
                    "staff_answer": answer[:MAX_NOTE_LENGTH],
                    "slot": str(done["dispute_id"]),
                    "resolved_at": now,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if resolved is not None:
            audit_append(
                session,
                action=AuditAction.DISPUTE_RESOLVED,
                status="SUCCESS",
                user_id=str(resolved["user_id"]),
                actor_id=done["decided_by"],
                transaction_id=str(done["original_id"]),
                details={"disputeId": str(resolved["_id"]), "state": state, "reversalId": str(reversal["_id"])},
                now=now,
            )
            _dispute_event(session, resolved, now=now)
        return done

    settled = _in_transaction(write)
    return settled or _proposal(proposal_id)


def _end_proposal(
    *, staff: User | None, proposal_id, from_states: list[str], to_state: str, action: str, note: str, request_id: str
) -> dict:
    """A proposal that will never move money (rejected, cancelled): its state and the release of
    its reservation in one transaction, so the amount is free again exactly once."""
    proposal = _proposal(proposal_id)
    now = now_ms()

    def write(session):
        ended = collection(ReversalProposal).find_one_and_update(
            {"_id": proposal["_id"], "state": {"$in": from_states}},
            {
                "$set": {
                    "state": to_state,
                    "decided_by": str(staff.pk) if staff else proposal["decided_by"],
                    "decided_at": now,
                    "decision_note": note,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if ended is None:
            return None
        if to_state == ProposalState.CANCELLED and ended["reversal_id"]:
            # Close the reversal's key in this transaction: a retry that already read the
            # proposal as FAILED would otherwise still claim it and move the money after the
            # cancel (the engine refuses a FAILED key whose retries are used up).
            closed = collection(Transaction).update_one(
                {"_id": ObjectId(ended["reversal_id"]), "status": TransactionStatus.FAILED},
                {"$set": {"retry_count": MAX_USER_RETRIES, "updated_at": now}},
                session=session,
            )
            if closed.matched_count != 1:
                raise ProposalDecided(state="being retried")
        _release(session, ended, now)
        audit_append(
            session,
            action=action,
            status="SUCCESS",
            user_id=_original_owner(proposal),
            actor_id=str(staff.pk) if staff else "",
            transaction_id=str(proposal["original_id"]),
            details=_proposal_details(proposal, note=note),
            request_id=request_id,
            now=now,
        )
        return ended

    ended = _in_transaction(write)
    if ended is None:
        current = _proposal(proposal_id)
        raise ProposalDecided(state=ProposalState(current["state"]).label.lower())
    return ended


def reversal_reject(*, staff: User, proposal_id, note: str = "", request_id: str = "") -> dict:
    """Turn down a PENDING proposal (any staff member, the maker withdrawing it included)."""
    _staff_only(staff)
    return _end_proposal(
        staff=staff,
        proposal_id=proposal_id,
        from_states=[ProposalState.PENDING],
        to_state=ProposalState.REJECTED,
        action=AuditAction.REVERSAL_REJECTED,
        note=_note(note),
        request_id=request_id,
    )


def reversal_cancel(*, staff: User, proposal_id, note: str = "", request_id: str = "") -> dict:
    """Give up on a FAILED reversal (the dispute is then resolved another way)."""
    _staff_only(staff)
    proposal = _proposal(proposal_id)
    if proposal["state"] == ProposalState.FAILED and proposal["reversal_id"]:
        reversal = collection(Transaction).find_one({"_id": ObjectId(proposal["reversal_id"])}, {"status": 1})
        if reversal and reversal["status"] != TransactionStatus.FAILED:  # a retry is running or went through
            raise ProposalDecided(state="being retried")
    return _end_proposal(
        staff=staff,
        proposal_id=proposal_id,
        from_states=[ProposalState.FAILED],
        to_state=ProposalState.CANCELLED,
        action=AuditAction.REVERSAL_CANCELLED,
        note=_note(note),
        request_id=request_id,
    )


def proposals_expire(*, now: datetime | None = None) -> int:
    """PENDING proposals past their time become EXPIRED and free their reservation. Run before a
    new proposal, on the staff queue, and by `manage.py expire_reversal_proposals`."""
    now = now or now_ms()
    # The pending ones by the (state, proposed_at) index, filtered here: the index has no expires_at.
    pending = collection(ReversalProposal).find({"state": ProposalState.PENDING}, {"_id": 1, "expires_at": 1})
    stale = [p for p in pending.sort("proposed_at", 1).limit(EXPIRE_BATCH) if p["expires_at"] < now]
    expired = 0
    for item in stale:
        try:
            _end_proposal(
                staff=None,
                proposal_id=item["_id"],
                from_states=[ProposalState.PENDING],
                to_state=ProposalState.EXPIRED,
                action=AuditAction.REVERSAL_EXPIRED,
                note="",
                request_id="",
            )
            expired += 1
        except ProposalDecided:  # approved or rejected meanwhile
            continue
    return expired


def dispute_reject(*, staff: User, dispute_id, answer: str, request_id: str = "") -> dict:
    """Close a dispute without moving money, with the answer the customer reads. Refused while
    one of its proposals could still move money (pending, approved, or failed and retryable)."""
    _staff_only(staff)
    answer = _note(answer, field="answer")
    if not answer:
        raise ValidationFailed("Write the answer the customer will read.", field="answer")
    oid = parse_object_id(dispute_id)
    dispute = collection(Dispute).find_one({"_id": oid}) if oid else None
    if dispute is None:
        raise NotFound(thing="Dispute")
    now = now_ms()
    live = LIVE_STATES

    def write(session):
        # By dispute alone (its index has no state): a dispute has a handful of proposals.
        proposals = collection(ReversalProposal).find({"dispute_id": dispute["_id"]}, {"state": 1}, session=session)
        if any(p["state"] in live for p in proposals):
            raise BusinessRuleViolation("Reject or cancel this dispute's reversal proposals first.")
        rejected = collection(Dispute).find_one_and_update(
            {"_id": dispute["_id"], "state": {"$nin": list(FINAL_DISPUTE_STATES)}},
            {
                "$set": {
                    "state": DisputeState.REJECTED,
                    "staff_answer": answer,
                    "slot": str(dispute["_id"]),
                    "resolved_at": now,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if rejected is None:
            raise BusinessRuleViolation("This dispute is already closed.")
        audit_append(
            session,
            action=AuditAction.DISPUTE_REJECTED,
            status="SUCCESS",
            user_id=str(dispute["user_id"]),
            actor_id=str(staff.pk),
            transaction_id=str(dispute["transaction_id"]),
            details={"disputeId": str(dispute["_id"]), "answer": answer},
            request_id=request_id,
            now=now,
        )
        _dispute_event(session, rejected, now=now, request_id=request_id)
        return rejected

    return _in_transaction(write)
