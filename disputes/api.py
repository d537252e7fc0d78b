"""JSON API for disputes and reversals (DESIGN §5): customers open and read their disputes; staff
read the queue, propose a reversal (the maker) and approve, reject, retry or cancel it (the checker).

Thin views: the body's shape is checked by its schema (`aegis.api` types, amounts by
`aegis.money.parse_amount`), then one `disputes.services` or `disputes.selectors` call runs; the
services own every rule (maker != checker, the reservation, expiry, exactly-once execution) and
raise the errors the API maps (aegis.errors: 400, 403, 404, 409, 422, 503).

Every staff decision that ends or moves money (approve, reject, retry, cancel, a dispute's
rejection) carries the staff member's `password`: a token has no "recent sign-in" to stamp, so
each request is confirmed as the pages' re-authentication is (`accounts.auth.password_confirm`),
against the same failed-login limits, before anything is read or written.
"""

from __future__ import annotations

from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import PlainValidator, ValidationInfo, WithJsonSchema

from accounts.auth import InvalidCredentials, password_confirm
from accounts.policy import ADMIN, USER, operation
from aegis.api import ID_SCHEMA, DateTime, NullableDateTime, Ok, Rupees, amount, choice, errors, ok, text
from aegis.errors import PermissionDenied, ValidationFailed
from aegis.ids import parse_object_id
from aegis.money import rupees
from disputes import selectors
from disputes.models import DisputeReason, DisputeState, ProposalState
from disputes.services import (
    MAX_NOTE_LENGTH,
    dispute_open,
    dispute_reject,
    proposals_expire,
    reversal_approve,
    reversal_cancel,
    reversal_propose,
    reversal_reject,
    reversal_retry,
)
from transfers.serializers import AdminTransaction, iso, transaction_admin_json

router = Router(tags=["disputes"])
admin_router = Router(tags=["admin"])

MAX_PASSWORD_LENGTH = 4096  # as the login form: the password policy owns the real bounds
MAX_AGE_DAYS = 3650


class PasswordNotConfirmed(PermissionDenied):
    # 403, not 401: the token is fine (a client must not sign out); this one request is refused.
    code = "password_incorrect"
    message = "That password is not right; nothing was changed."


def _confirm(request: HttpRequest, password: str) -> None:
    """The staff member's own password, checked like a sign-in (RateLimited, 429, after too many)."""
    try:
        password_confirm(request, password=password)
    except InvalidCredentials:
        raise PasswordNotConfirmed() from None


def _request_id(request: HttpRequest) -> str:
    return getattr(request, "request_id", "")  # aegis.observability.RequestLogMiddleware


# --- input types ----------------------------------------------------------------------------------
def object_id(thing: str, *, required: bool = True):
    """A body field naming a `thing` by id: 24 hexadecimal characters (else 400 naming the field)."""

    def check(value, info: ValidationInfo) -> str | None:
        if value is None and not required:
            return None
        if value is None or value == "":  # present but empty is not "absent": the document says so
            raise ValidationFailed(f"{info.field_name} is required.", field=info.field_name)
        if not isinstance(value, str) or parse_object_id(value) is None:
            raise ValidationFailed(
                f"{info.field_name} must be a {thing} id (24 hexadecimal characters).", field=info.field_name
            )
        return value

    schema = ID_SCHEMA if required else {**ID_SCHEMA, "type": ["string", "null"]}
    return Annotated[str | None, PlainValidator(check), WithJsonSchema(schema)]


def _reason(value, info: ValidationInfo) -> str:
    if value not in DisputeReason.values:
        raise ValidationFailed(f"reason must be one of {', '.join(DisputeReason.values)}.", field="reason")
    return value


Reason = Annotated[
    str,
    PlainValidator(_reason),
    WithJsonSchema(
        {
            "type": "string",
            "enum": DisputeReason.values,
            "description": "; ".join(f"{value}: {label}" for value, label in DisputeReason.choices),
        }
    ),
]


Amount = amount(
    "Rupees to return, as a JSON number or a string, more than 0 and at most 10,000, with at "
    "most 2 decimals (never rounded); at most what is left of the transaction to reverse."
)


def _age(value, info: ValidationInfo) -> int:
    raw = "" if value is None else str(value)
    if raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 5 or int(raw) > MAX_AGE_DAYS:
        raise ValidationFailed(f"minAgeDays must be a whole number from 0 to {MAX_AGE_DAYS}.", field="minAgeDays")
    return int(raw)


AgeDays = Annotated[
    int,
    PlainValidator(_age),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_AGE_DAYS, "default": 0}),
]

DisputePath = Annotated[
    str, WithJsonSchema({**ID_SCHEMA, "description": "A dispute id; not yours (or no such dispute): 404."})
]
StaffDisputePath = Annotated[str, WithJsonSchema({**ID_SCHEMA, "description": "A dispute id; unknown: 404."})]
ProposalPath = Annotated[str, WithJsonSchema({**ID_SCHEMA, "description": "A proposal id; unknown: 404."})]
Password = text(MAX_PASSWORD_LENGTH)
Note = text(MAX_NOTE_LENGTH, required=False)


class DisputeIn(Schema):
    transactionId: object_id("transaction") = Field(description="A COMPLETED transfer you sent.")
    reason: Reason
    note: Note = ""


class ProposalIn(Schema):
    transactionId: object_id("transaction") = Field(description="A COMPLETED transfer or funding.")
    amount: Amount
    note: Note = ""
    disputeId: object_id("dispute", required=False) = Field(
        None, description="The dispute this answers (it goes UNDER_REVIEW); omit for a reversal with no dispute."
    )


class Confirmed(Schema):
    password: Password = Field(description="Your own password, confirming this decision (403 if wrong).")


class DecisionIn(Confirmed):
    note: Note = ""


class DisputeRejectIn(Confirmed):
    answer: text(MAX_NOTE_LENGTH) = Field(description="What the customer will read.")


class QueueQuery(Schema):
    state: choice(DisputeState.values) = Field(None, description="One state; OPEN and UNDER_REVIEW when omitted.")
    minAgeDays: AgeDays = Field(0, description="Only disputes opened at least this many days ago.")


class ProposalQuery(Schema):
    # Only PENDING has a bounded read today (disputes.selectors.proposals_pending).
    state: Literal["PENDING"] | None = Field(None, description="PENDING (the default).")
    transactionId: object_id("transaction", required=False) = Field(
        None, description="Instead: every proposal ever made for this transaction, in any state, oldest first."
    )


# --- output types ---------------------------------------------------------------------------------
class PublicProposal(Schema):
    """A reversal proposal as the disputing customer sees it: no staff ids, notes or failure reasons."""

    state: ProposalState
    amount: Rupees
    proposedAt: DateTime
    updatedAt: DateTime


class DisputeOut(Schema):
    id: str = Field(alias="_id")
    transactionId: str
    reason: DisputeReason
    note: str
    state: DisputeState
    answer: str = Field(description="Staff's answer once the dispute is resolved or rejected; empty before.")
    openedAt: DateTime
    updatedAt: DateTime
    resolvedAt: NullableDateTime


class DisputeDetail(DisputeOut):
    proposals: list[PublicProposal] = Field(description="Reversals proposed for it, oldest first.")


class DisputeAnswer(Ok):
    dispute: DisputeOut


class DisputeDetailAnswer(Ok):
    dispute: DisputeDetail


class DisputeList(Ok):
    disputes: list[DisputeOut]


class StaffDispute(DisputeOut):
    userId: str
    accountId: str


class Proposal(Schema):
    id: str = Field(alias="_id")
    transactionId: str = Field(description="The original being reversed.")
    disputeId: str | None
    amount: Rupees
    note: str
    state: ProposalState
    proposedBy: str = Field(description="The maker's user id.")
    proposedAt: DateTime
    expiresAt: DateTime = Field(description="A PENDING proposal not approved by then expires.")
    decidedBy: str | None = Field(description="The checker (who approved, rejected or cancelled it).")
    decidedAt: NullableDateTime
    decisionNote: str
    reversalId: str | None = Field(description="The REVERSAL transaction, once one was attempted.")
    failureReason: str | None = Field(description="Why its reversal FAILED; null otherwise.")
    updatedAt: DateTime


class ReversibleTransaction(AdminTransaction):
    reverses: str | None = Field(description="On a REVERSAL: the original it returns.")
    reversedBy: list[str] = Field(description="On an original: its reversal transactions.")
    reversedAmount: Rupees = Field(description="How much of it COMPLETED reversals returned.")
    reversibleLeft: Rupees = Field(description="What is left to propose: the amount less every live proposal.")


class StaffDisputeDetail(Ok):
    dispute: StaffDispute
    transaction: ReversibleTransaction
    proposals: list[Proposal]


class StaffDisputeList(Ok):
    disputes: list[StaffDispute]


class StaffDisputeAnswer(Ok):
    message: str
    dispute: StaffDispute


class ProposalAnswer(Ok):
    message: str
    proposal: Proposal


class ProposalList(Ok):
    proposals: list[Proposal]


def dispute_json(dispute: dict) -> dict:
    return {
        "_id": str(dispute["_id"]),
        "transactionId": str(dispute["transaction_id"]),
        "reason": dispute["reason"],
        "note": dispute.get("note", ""),
        "state": dispute["state"],
        "answer": dispute.get("staff_answer", ""),
        "openedAt": iso(dispute["opened_at"]),
        "updatedAt": iso(dispute["updated_at"]),
        "resolvedAt": iso(dispute.get("resolved_at")),
    }


def staff_dispute_json(dispute: dict) -> dict:
    return {**dispute_json(dispute), "userId": str(dispute["user_id"]), "accountId": str(dispute["account_id"])}


# What a customer is told of a proposal: decided or not, never why a reversal is stuck (that
# would say whether the other party still has the money).
_PUBLIC_STATES = {ProposalState.APPROVED: ProposalState.PENDING, ProposalState.FAILED: ProposalState.PENDING}


def public_proposal_json(proposal: dict) -> dict:
    return {
        "state": _PUBLIC_STATES.get(proposal["state"], proposal["state"]),
        "amount": rupees(proposal["amount"]),
        "proposedAt": iso(proposal["proposed_at"]),
        "updatedAt": iso(proposal["updated_at"]),
    }


def proposal_json(proposal: dict) -> dict:
    return {
        "_id": str(proposal["_id"]),
        "transactionId": str(proposal["original_id"]),
        "disputeId": str(proposal["dispute_id"]) if proposal.get("dispute_id") else None,
        "amount": rupees(proposal["amount"]),
        "note": proposal.get("note", ""),
        "state": proposal["state"],
        "proposedBy": proposal["proposed_by"],
        "proposedAt": iso(proposal["proposed_at"]),
        "expiresAt": iso(proposal["expires_at"]),
        "decidedBy": proposal.get("decided_by") or None,
        "decidedAt": iso(proposal.get("decided_at")),
        "decisionNote": proposal.get("decision_note", ""),
        "reversalId": proposal.get("reversal_id") or None,
        "failureReason": proposal.get("failure_reason") or None,
        "updatedAt": iso(proposal["updated_at"]),
    }


def reversible_json(txn: dict) -> dict:
    return {
        **transaction_admin_json(txn),
        "reverses": str(txn["reverses_id"]) if txn.get("reverses_id") else None,
        "reversedBy": [str(one) for one in txn.get("reversed_by") or []],
        "reversedAmount": rupees(int(txn.get("reversed_amount") or 0)),
        "reversibleLeft": rupees(max(0, selectors.reversible_left(original=txn))),
    }


PROPOSAL_MESSAGES = {
    ProposalState.PENDING: "Reversal proposed; a different staff member must approve it.",
    ProposalState.APPROVED: "Approved; the reversal could not be confirmed yet. Retry to settle it.",
    ProposalState.EXECUTED: "Approved; the money was returned.",
    ProposalState.FAILED: "Approved, but the reversal failed: {reason}",
    ProposalState.REJECTED: "Proposal rejected; its amount is free to propose again.",
    ProposalState.CANCELLED: "Proposal cancelled; its amount is free to propose again.",
    ProposalState.EXPIRED: "Proposal expired.",
}


def _proposal_answer(proposal: dict, status: int = 200):
    message = PROPOSAL_MESSAGES[proposal["state"]].format(reason=proposal.get("failure_reason", ""))
    return Status(status, ok(message=message, proposal=proposal_json(proposal)))


# --- the customer's routes ------------------------------------------------------------------------
@operation(
    router, "POST", "/disputes", USER, strict="dispute", url_name="disputes",
    response={201: DisputeAnswer, **errors(400, 401, 404, 409, 422, 503)},
    summary="Dispute a transfer you sent",
    description="Any signed-in customer, about a COMPLETED transfer they sent within "
    "AEGIS_DISPUTE_WINDOW_DAYS (60 by default) of its completing. 201: opened (OPEN; staff are told). "
    "400: a field is missing or malformed (`field` names it); 404: not a transaction you sent; 409 "
    "`dispute_exists`: it already has an open dispute; 422 `dispute_not_allowed`: a funding or a reversal, "
    "a failed or unfinished transfer, or one older than the window; 503: busy, send it again.",
)  # fmt: skip
def disputes_create(request: HttpRequest, payload: DisputeIn):
    dispute = dispute_open(
        user=request.user,
        transaction_id=payload.transactionId,
        reason=payload.reason,
        note=payload.note,
        request_id=_request_id(request),
    )
    return Status(201, ok(dispute=dispute_json(dispute)))


@operation(
    router, "GET", "/disputes", USER, strict="dispute", url_name="disputes", response={200: DisputeList, **errors(401)},
    summary="Your disputes, newest first",
    description=f"The signed-in customer's own disputes (at most {selectors.CUSTOMER_LIMIT}), with their state "
    "and staff's answer.",
)  # fmt: skip
def disputes_mine(request: HttpRequest):
    return ok(disputes=[dispute_json(d) for d in selectors.disputes_of_user(user=request.user)])


@operation(
    router, "GET", "/disputes/{str:dispute_id}", USER, url_name="dispute-detail",
    response={200: DisputeDetailAnswer, **errors(401, 404)},
    summary="One of your disputes, with the reversals proposed for it",
    description="The customer who opened it (staff: any). 404: anyone else's dispute, or no such dispute. "
    "Proposals show only their state, amount and times.",
)  # fmt: skip
def dispute_detail(request: HttpRequest, dispute_id: DisputePath):
    dispute = selectors.dispute_get(viewer=request.user, dispute_id=dispute_id)
    proposals = selectors.proposals_of_dispute(dispute_id=dispute["_id"])
    return ok(dispute={**dispute_json(dispute), "proposals": [public_proposal_json(p) for p in proposals]})


# --- staff: the queue and decisions ---------------------------------------------------------------
CONFIRMED = "The body's `password` is the caller's own, checked like a sign-in: wrong is 403 "
CONFIRMED += "`password_incorrect` and counts against the failed-login limits (429 past them); nothing changes."


@operation(
    admin_router, "GET", "/admin/disputes", ADMIN, strict="admin", url_name="admin-disputes",
    response={200: StaffDisputeList, **errors(400, 401, 403)},
    summary="The disputes queue, oldest first (staff only)",
    description=f"At most {selectors.QUEUE_LIMIT}. Without `state`: OPEN and UNDER_REVIEW; a final state is "
    f"read over the last {selectors.QUEUE_HISTORY_DAYS} days. 400: a bad `state` or `minAgeDays`; 403: not staff.",
)  # fmt: skip
def admin_disputes(request: HttpRequest, query: Query[QueueQuery]):
    rows = selectors.disputes_queue(state=query.state, min_age_days=query.minAgeDays)
    return ok(disputes=[staff_dispute_json(d) for d in rows])


@operation(
    admin_router, "GET", "/admin/disputes/{str:dispute_id}", ADMIN, strict="admin", url_name="admin-dispute-detail",
    response={200: StaffDisputeDetail, **errors(401, 403, 404)},
    summary="A dispute with its transaction and every proposal for it (staff only)",
    description="The transaction carries its reversal links and what is left to propose; proposals are every "
    "one made for that transaction (with or without this dispute), with the maker's and checker's ids.",
)  # fmt: skip
def admin_dispute_detail(request: HttpRequest, dispute_id: StaffDisputePath):
    dispute = selectors.dispute_get(viewer=request.user, dispute_id=dispute_id)
    txn = selectors.transaction_document(dispute["transaction_id"])
    proposals = selectors.proposals_of_original(original_id=txn["_id"])
    return ok(
        dispute=staff_dispute_json(dispute),
        transaction=reversible_json(txn),
        proposals=[proposal_json(p) for p in proposals],
    )


@operation(
    admin_router, "POST", "/admin/disputes/{str:dispute_id}/reject", ADMIN, strict="admin",
    url_name="admin-dispute-reject", response={200: StaffDisputeAnswer, **errors(400, 401, 403, 404, 422, 503)},
    summary="Close a dispute without moving money, with the answer the customer reads (staff only)",
    description=f"{CONFIRMED} 200: REJECTED (the customer is told). 400: no `answer`; 404: no such dispute; "
    "422: already closed, or one of its proposals could still move money (reject or cancel it first).",
)  # fmt: skip
def admin_dispute_reject(request: HttpRequest, dispute_id: StaffDisputePath, payload: DisputeRejectIn):
    _confirm(request, payload.password)
    dispute = dispute_reject(
        staff=request.user, dispute_id=dispute_id, answer=payload.answer, request_id=_request_id(request)
    )
    return ok(message="Dispute rejected; the customer was told.", dispute=staff_dispute_json(dispute))


@operation(
    admin_router, "POST", "/admin/reversals", ADMIN, strict="admin", url_name="admin-reversals",
    response={201: ProposalAnswer, **errors(400, 401, 403, 404, 422, 503)},
    summary="Propose a reversal: the maker (staff only)",
    description="Returns `amount` of a COMPLETED transfer or funding from its receiver to its sender once a "
    "*different* staff member approves it; nothing moves now, and the proposal expires after "
    "AEGIS_REVERSAL_PROPOSAL_HOURS (24 by default). With `disputeId`, the dispute (about that transaction) goes "
    "UNDER_REVIEW. 201: PENDING. 400: a field is missing or malformed; 404: no such transaction, or no such "
    "dispute about it; 422 `reversal_too_large`: more than is left (the amount less every live proposal; "
    "expired proposals give theirs back first), or the transaction is not a completed transfer or funding, or "
    "the dispute is closed.",
)  # fmt: skip
def admin_reversal_propose(request: HttpRequest, payload: ProposalIn):
    proposal = reversal_propose(
        staff=request.user,
        transaction_id=payload.transactionId,
        amount_paise=payload.amount,
        note=payload.note,
        dispute_id=payload.disputeId,
        request_id=_request_id(request),
    )
    return _proposal_answer(proposal, 201)


@operation(
    admin_router, "GET", "/admin/reversals", ADMIN, strict="admin", url_name="admin-reversals",
    response={200: ProposalList, **errors(400, 401, 403)},
    summary="Reversal proposals waiting for a checker, oldest first (staff only)",
    description=f"PENDING ones (at most {selectors.QUEUE_LIMIT}), after expiring those past their time; with "
    "`transactionId`, every proposal for that transaction in any state instead.",
)  # fmt: skip
def admin_reversals(request: HttpRequest, query: Query[ProposalQuery]):
    if query.transactionId:
        rows = selectors.proposals_of_original(original_id=query.transactionId)
    else:
        proposals_expire()
        rows = selectors.proposals_pending()
    return ok(proposals=[proposal_json(p) for p in rows])


DECISION_ANSWERS = {200: ProposalAnswer, **errors(400, 401, 403, 404, 409, 422, 503)}


@operation(
    admin_router, "POST", "/admin/reversals/{str:proposal_id}/approve", ADMIN, strict="admin",
    url_name="admin-reversal-approve", response=DECISION_ANSWERS,
    summary="Approve a proposal and run its reversal: the checker (staff only)",
    description=f"{CONFIRMED} Then the reversal runs once (idempotency key `reversal-<proposal id>`). 200 with "
    "the proposal as it ends: EXECUTED (money returned; its dispute RESOLVED_REVERSED, or RESOLVED_PARTIAL "
    "while some of the transaction is not reversed) or FAILED with `failureReason` (e.g. the receiver lacks the "
    "funds; the dispute stays UNDER_REVIEW; retry or cancel it). 403 `forbidden`: you proposed it; 404: no such "
    "proposal; 409 `proposal_decided`: no longer PENDING; 422 `proposal_expired`; 503: approved but not "
    "confirmed, retry to settle it (money moves once).",
)  # fmt: skip
def admin_reversal_approve(request: HttpRequest, proposal_id: ProposalPath, payload: DecisionIn):
    _confirm(request, payload.password)
    proposal = reversal_approve(
        staff=request.user, proposal_id=proposal_id, note=payload.note, request_id=_request_id(request)
    )
    return _proposal_answer(proposal)


@operation(
    admin_router, "POST", "/admin/reversals/{str:proposal_id}/reject", ADMIN, strict="admin",
    url_name="admin-reversal-reject", response=DECISION_ANSWERS,
    summary="Reject a pending proposal (staff only, the maker included)",
    description=f"{CONFIRMED} 200: REJECTED, its amount free to propose again (a dispute stays open). "
    "404: no such proposal; 409 `proposal_decided`: no longer PENDING.",
)  # fmt: skip
def admin_reversal_reject(request: HttpRequest, proposal_id: ProposalPath, payload: DecisionIn):
    _confirm(request, payload.password)
    proposal = reversal_reject(
        staff=request.user, proposal_id=proposal_id, note=payload.note, request_id=_request_id(request)
    )
    return _proposal_answer(proposal)


@operation(
    admin_router, "POST", "/admin/reversals/{str:proposal_id}/retry", ADMIN, strict="admin",
    url_name="admin-reversal-retry", response=DECISION_ANSWERS,
    summary="Run a FAILED (or unconfirmed) reversal again (staff only, not its maker)",
    description=f"{CONFIRMED} The same idempotency key, so at most one reversal ever completes for a proposal. "
    "200: EXECUTED, or FAILED again with the reason (after 3 attempts, cancel it). 403 `forbidden`: you "
    "proposed it; 404: no such proposal; 409 `proposal_decided`: not APPROVED or FAILED; 503: not confirmed.",
)  # fmt: skip
def admin_reversal_retry(request: HttpRequest, proposal_id: ProposalPath, payload: Confirmed):
    _confirm(request, payload.password)
    proposal = reversal_retry(staff=request.user, proposal_id=proposal_id, request_id=_request_id(request))
    return _proposal_answer(proposal)


@operation(
    admin_router, "POST", "/admin/reversals/{str:proposal_id}/cancel", ADMIN, strict="admin",
    url_name="admin-reversal-cancel", response=DECISION_ANSWERS,
    summary="Give up on a FAILED reversal (staff only)",
    description=f"{CONFIRMED} 200: CANCELLED, its amount free again; resolve the dispute another way (reject it "
    "with an answer, or propose anew). 404: no such proposal; 409 `proposal_decided`: not FAILED, or a retry "
    "is running.",
)  # fmt: skip
def admin_reversal_cancel(request: HttpRequest, proposal_id: ProposalPath, payload: DecisionIn):
    _confirm(request, payload.password)
    proposal = reversal_cancel(
        staff=request.user, proposal_id=proposal_id, note=payload.note, request_id=_request_id(request)
    )
    return _proposal_answer(proposal)
