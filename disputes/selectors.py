"""Reads of disputes and reversal proposals, for the customer, the staff queue and the API.

Bounded: a customer's disputes and one transaction's proposals are small sets read through
their own indexes; the staff queue reads one state at a time, oldest first, a page at most, and
final states only within QUEUE_HISTORY_DAYS.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from accounts.models import User
from aegis.clock import aware, now_ms
from aegis.errors import NotFound
from aegis.ids import parse_object_id
from aegis.mongo import collection
from disputes.models import (
    FINAL_DISPUTE_STATES,
    OPEN_SLOT,
    Dispute,
    DisputeState,
    ProposalState,
    ReversalProposal,
    ReversalReservation,
)
from transfers.models import Transaction, TransactionKind, TransactionStatus

QUEUE_LIMIT = 50
QUEUE_HISTORY_DAYS = 90
CUSTOMER_LIMIT = 50
RECENT_PROPOSAL_DAYS = 30
RECENT_PROPOSALS = 50
LIVE_PROPOSALS = (ProposalState.PENDING, ProposalState.APPROVED, ProposalState.FAILED)


def dispute_refusal(txn: dict) -> str:
    """Why its sender cannot dispute this transaction ("" when they can): the one statement of the
    rules, used by disputes.services.dispute_open and by the pages that offer the button.
    `txn` needs kind, status, completed_at, amount and reversed_amount."""
    if txn.get("kind") != TransactionKind.TRANSFER:
        return "Only a transfer you sent can be disputed."
    if txn.get("status") != TransactionStatus.COMPLETED:
        return "Only a completed transfer can be disputed; a failed one moved no money."
    days = settings.AEGIS_DISPUTE_WINDOW_DAYS
    completed = txn.get("completed_at")
    if completed is None or now_ms() - completed > timedelta(days=days):
        return f"A transfer can be disputed within {days} days of completing; this one is older. Contact the bank."
    if int(txn.get("reversed_amount") or 0) >= int(txn.get("amount") or 0):
        return "This transfer was already returned to you in full."
    return ""


def dispute_get(*, viewer: User, dispute_id) -> dict:
    """One dispute: its customer or staff; NotFound for anyone else, a malformed or unknown id."""
    oid = parse_object_id(dispute_id)
    dispute = collection(Dispute).find_one({"_id": oid}) if oid else None
    if dispute is None or not (viewer.is_admin or dispute["user_id"] == viewer.pk):
        raise NotFound(thing="Dispute")
    return dispute


def disputes_of_user(*, user: User, limit: int = CUSTOMER_LIMIT) -> list[dict]:
    """The customer's disputes, newest first (the (user, opened_at, _id) index)."""
    rows = collection(Dispute).find({"user_id": user.pk}).sort([("opened_at", -1), ("_id", -1)]).limit(limit)
    return list(rows)


def dispute_of_transaction(*, transaction_id) -> dict | None:
    """The open dispute of a transaction, if it has one (the unique (transaction, slot) pair)."""
    oid = parse_object_id(transaction_id)
    if oid is None:
        return None
    # By transaction alone (its index has no slot; the unique pair's index is partial, never planned).
    return next((d for d in collection(Dispute).find({"transaction_id": oid}) if d["slot"] == OPEN_SLOT), None)


def disputes_queue(*, state: str | None = None, min_age_days: int = 0, limit: int = QUEUE_LIMIT) -> list[dict]:
    """The staff queue, oldest first: one state (OPEN and UNDER_REVIEW when none is given), opened
    at least `min_age_days` ago. A final state is read over the last QUEUE_HISTORY_DAYS only."""
    now = now_ms()
    states = [state] if state else [DisputeState.OPEN, DisputeState.UNDER_REVIEW]
    rows: list[dict] = []
    for one in states:  # one (state, opened_at) range each: `$in` over states would be planned as a scan
        opened = {"$lte": now - timedelta(days=max(0, min_age_days))}
        if one in FINAL_DISPUTE_STATES:
            opened["$gte"] = now - timedelta(days=QUEUE_HISTORY_DAYS)
        query = {"state": one, "opened_at": opened}
        rows += collection(Dispute).find(query).sort([("opened_at", 1), ("_id", 1)]).limit(limit)
    rows.sort(key=lambda row: (row["opened_at"], row["_id"]))
    return rows[:limit]


def proposals_of_original(*, original_id) -> list[dict]:
    """Every proposal made for one transaction, oldest first (the (original, proposed_at) index)."""
    oid = parse_object_id(original_id)
    if oid is None:
        return []
    return list(collection(ReversalProposal).find({"original_id": oid}).sort("proposed_at", 1))


def proposals_of_dispute(*, dispute_id) -> list[dict]:
    oid = parse_object_id(dispute_id)
    if oid is None:
        return []
    return sorted(collection(ReversalProposal).find({"dispute_id": oid}), key=lambda p: p["proposed_at"])


def proposals_pending(*, limit: int = QUEUE_LIMIT) -> list[dict]:
    """Proposals waiting for a checker, oldest first (expired ones included until swept)."""
    query = {"state": ProposalState.PENDING}
    return list(collection(ReversalProposal).find(query).sort([("proposed_at", 1), ("_id", 1)]).limit(limit))


def proposals_recent(*, now=None, days: int = RECENT_PROPOSAL_DAYS, limit: int = RECENT_PROPOSALS) -> list[dict]:
    """Proposals no longer pending, newest first: one bounded (state, proposed_at) window per
    state (a `$in` over states would be planned as a scan)."""
    now = now or now_ms()
    since = now - timedelta(days=days)
    rows: list[dict] = []
    for state in ProposalState.values:
        if state == ProposalState.PENDING:
            continue
        query = {"state": state, "proposed_at": {"$gte": since, "$lte": now}}
        rows += collection(ReversalProposal).find(query).sort([("proposed_at", -1), ("_id", -1)]).limit(limit)
    # What still needs a hand (failed, or approved and unconfirmed) before what is done.
    attention = (ProposalState.FAILED, ProposalState.APPROVED)
    rows.sort(key=lambda p: (p["state"] not in attention, -aware(p["proposed_at"]).timestamp()))
    return rows[:limit]


def proposal_get(*, proposal_id) -> dict:
    oid = parse_object_id(proposal_id)
    proposal = collection(ReversalProposal).find_one({"_id": oid}) if oid else None
    if proposal is None:
        raise NotFound(thing="Proposal")
    return proposal


def transaction_document(transaction_id) -> dict:
    """A whole transaction document by id, reversal links included (staff reads); NotFound otherwise."""
    oid = parse_object_id(transaction_id)
    txn = collection(Transaction).find_one({"_id": oid}) if oid else None
    if txn is None:
        raise NotFound(thing="Transaction")
    return txn


def reversible_left(*, original: dict) -> int:
    """What is left to propose on an original: its amount less every live or done proposal."""
    reservation = collection(ReversalReservation).find_one({"original_id": original["_id"]}, {"reserved": 1})
    return int(original["amount"]) - int(reservation["reserved"] if reservation else 0)


def reversals_of(*, original: dict) -> list[dict]:
    """The reversal transactions of an original (its `reversed_by` ids), oldest first."""
    ids = list(original.get("reversed_by") or [])
    if not ids:
        return []
    return sorted(collection(Transaction).find({"_id": {"$in": ids}}), key=lambda t: t["created_at"])
