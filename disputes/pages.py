"""What the customer's dispute pages show: whether a receipt may be disputed, each state in plain
words, a dispute's timeline and the reversals that brought money back.

Reads only (selectors of disputes and statements); disputes.services.dispute_open decides again
when the form is posted, so a rule here only spares the customer a form that would be refused.
"""

from __future__ import annotations

from accounts.models import User
from aegis.errors import NotFound
from aegis.money import format_inr
from disputes.models import DisputeReason, DisputeState, ProposalState
from disputes.selectors import dispute_of_transaction, proposals_of_dispute
from disputes.selectors import dispute_refusal as selectors_dispute_refusal
from statements.selectors import receipt_for
from transfers.models import TransactionKind

# What each state means to the customer, in the order a dispute moves through them.
STATE_TEXTS = {
    DisputeState.OPEN: "We have your dispute. A staff member will look at it soon; nothing has been decided yet.",
    DisputeState.UNDER_REVIEW: (
        "A staff member is reviewing it. If money should come back, a second staff member must "
        "approve that before anything moves."
    ),
    DisputeState.RESOLVED_REVERSED: "Resolved: the whole amount was returned to your account.",
    DisputeState.RESOLVED_PARTIAL: "Resolved: part of the amount was returned to your account.",
    DisputeState.REJECTED: "Closed without returning money; staff's answer says why.",
}
# Badge colours from the shared stylesheet (static/css/aegis.css).
STATE_BADGES = {
    DisputeState.OPEN: "info",
    DisputeState.UNDER_REVIEW: "warning",
    DisputeState.RESOLVED_REVERSED: "success",
    DisputeState.RESOLVED_PARTIAL: "success",
    DisputeState.REJECTED: "error",
}


def dispute_refusal(receipt: dict) -> str:
    """Why the viewer of `receipt` cannot dispute it ("" when they can): dispute_open's own rules."""
    if receipt["viewer_side"] != "OUT":
        return "Only a transfer you sent can be disputed."
    return selectors_dispute_refusal(receipt)


def dispute_action(receipt: dict) -> dict:
    """What the receipt page offers its sender: the open dispute, or the button when allowed."""
    if receipt["viewer_side"] != "OUT" or receipt["kind"] != TransactionKind.TRANSFER:
        return {"open": None, "allowed": False}
    open_one = dispute_of_transaction(transaction_id=receipt["id"])
    return {
        "open": dispute_view(open_one) if open_one else None,
        "allowed": not open_one and not dispute_refusal(receipt),
    }


def dispute_view(dispute: dict) -> dict:
    """A dispute document as the pages show it."""
    state = dispute["state"]
    return {
        "id": str(dispute["_id"]),
        "transaction_id": str(dispute["transaction_id"]),
        "state": state,
        "state_label": DisputeState(state).label,
        "state_text": STATE_TEXTS.get(state, ""),
        "badge": STATE_BADGES.get(state, "info"),
        "reason": dispute["reason"],
        "reason_label": DisputeReason(dispute["reason"]).label,
        "note": dispute.get("note", ""),
        "staff_answer": dispute.get("staff_answer", ""),
        "opened_at": dispute["opened_at"],
        "updated_at": dispute.get("updated_at"),
        "resolved_at": dispute.get("resolved_at"),
        "final": state in (DisputeState.RESOLVED_REVERSED, DisputeState.RESOLVED_PARTIAL, DisputeState.REJECTED),
    }


def states_explained(current: str) -> list[dict]:
    return [
        {"state": s, "label": s.label, "text": STATE_TEXTS[s], "badge": STATE_BADGES[s], "current": s == current}
        for s in DisputeState
    ]


def dispute_story(*, viewer: User, dispute: dict) -> tuple[list[dict], list[dict]]:
    """(reversals, timeline) of a dispute. The customer sees that staff took it up and what came
    back, never the maker-checker internals (who proposed, rejected proposals, failures)."""
    reversals = []
    proposals = proposals_of_dispute(dispute_id=dispute["_id"])
    for proposal in proposals:
        if proposal["state"] != ProposalState.EXECUTED or not proposal["reversal_id"]:
            continue
        try:
            reversals.append(receipt_for(viewer=viewer, transaction_id=proposal["reversal_id"]))
        except NotFound:  # not COMPLETED after all: nothing came back through it
            continue
    timeline = [{"at": dispute["opened_at"], "text": "You opened the dispute.", "kind": "opened"}]
    if proposals:
        timeline.append({"at": proposals[0]["proposed_at"], "text": "Staff started reviewing it.", "kind": "review"})
    for reversal in reversals:
        at = reversal["completed_at"] or reversal["created_at"]
        text = f"{format_inr(reversal['amount'])} was returned to your account."
        timeline.append({"at": at, "text": text, "kind": "reversal"})
    if dispute.get("resolved_at"):
        text = f"{DisputeState(dispute['state']).label}."
        timeline.append({"at": dispute["resolved_at"], "text": text, "kind": "resolved"})
    timeline.sort(key=lambda item: item["at"])
    return reversals, timeline
