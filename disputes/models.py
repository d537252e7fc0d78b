"""Disputes a customer opens on a transfer they sent, and the reversals staff propose and approve.

A reversal moves money only once a second staff member approves it (maker-checker), and the
sum of everything proposed and not yet released for one original never exceeds its amount: a
proposal reserves its amount on the original (`ReversalReservation`), a rejection, expiry or
cancellation gives it back, in the same transaction as the state change.
"""

from django.db import models
from django.utils import timezone

OPEN_SLOT = "open"  # Dispute.slot while a dispute is not final: one per transaction (unique)


class DisputeReason(models.TextChoices):
    WRONG_ACCOUNT = "WRONG_ACCOUNT", "Sent to the wrong account"
    NOT_RECEIVED = "NOT_RECEIVED", "The recipient says it never arrived"
    FRAUD = "FRAUD", "Fraud: I did not authorise it or was deceived"
    OTHER = "OTHER", "Something else"


class DisputeState(models.TextChoices):
    OPEN = "OPEN", "Open"
    UNDER_REVIEW = "UNDER_REVIEW", "Under review"
    RESOLVED_REVERSED = "RESOLVED_REVERSED", "Resolved: reversed"
    RESOLVED_PARTIAL = "RESOLVED_PARTIAL", "Resolved: partly reversed"
    REJECTED = "REJECTED", "Rejected"


FINAL_DISPUTE_STATES = (DisputeState.RESOLVED_REVERSED, DisputeState.RESOLVED_PARTIAL, DisputeState.REJECTED)


class Dispute(models.Model):
    transaction = models.ForeignKey("transfers.Transaction", on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+", db_index=False)
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+", db_index=False)
    reason = models.CharField(max_length=16, choices=DisputeReason.choices)
    note = models.CharField(max_length=500, blank=True, default="")
    state = models.CharField(max_length=20, choices=DisputeState.choices, default=DisputeState.OPEN)
    staff_answer = models.CharField(max_length=500, blank=True, default="")
    # OPEN_SLOT while the dispute is not final, then its own id: the unique (transaction, slot)
    # index allows one open dispute per transfer, and any number of closed ones.
    slot = models.CharField(max_length=24, default=OPEN_SLOT)
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "disputes"
        constraints = [models.UniqueConstraint(fields=["transaction", "slot"], name="dispute_one_open")]
        indexes = [
            models.Index(fields=["state", "opened_at", "id"], name="dispute_state_opened"),  # the staff queue
            models.Index(fields=["user", "opened_at", "id"], name="dispute_user_opened"),  # a customer's list
        ]


class ProposalState(models.TextChoices):
    PENDING = "PENDING", "Waiting for a second staff member"
    APPROVED = "APPROVED", "Approved, moving the money"
    EXECUTED = "EXECUTED", "Reversed"
    FAILED = "FAILED", "Approved, but the reversal failed"
    REJECTED = "REJECTED", "Rejected"
    EXPIRED = "EXPIRED", "Expired before anyone approved it"
    CANCELLED = "CANCELLED", "Cancelled after the reversal failed"


# The states whose amount is still reserved on the original.
RESERVING_STATES = (ProposalState.PENDING, ProposalState.APPROVED, ProposalState.FAILED, ProposalState.EXECUTED)


class ReversalProposal(models.Model):
    original = models.ForeignKey("transfers.Transaction", on_delete=models.PROTECT, related_name="+")
    dispute = models.ForeignKey(Dispute, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()  # paise
    note = models.CharField(max_length=500, blank=True, default="")
    state = models.CharField(max_length=10, choices=ProposalState.choices, default=ProposalState.PENDING)
    proposed_by = models.CharField(max_length=24)  # the maker (staff user id)
    proposed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_by = models.CharField(max_length=24, blank=True, default="")  # the checker
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True, default="")
    reversal_id = models.CharField(max_length=24, blank=True, default="")  # the REVERSAL transaction
    failure_reason = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "reversal_proposals"
        indexes = [
            models.Index(fields=["state", "proposed_at", "id"], name="proposal_state_proposed"),
            models.Index(fields=["original", "proposed_at"], name="proposal_original"),
        ]


class ReversalReservation(models.Model):
    """How much of one original is promised to proposals (pending, approved or done): the one
    document every proposal for it changes, by a guarded `$inc`, so two proposals whose sum
    exceeds the original cannot both be made, however they race."""

    original = models.OneToOneField("transfers.Transaction", on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()  # the original's amount, paise
    reserved = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "reversal_reservations"
        # The one-to-one's unique index is partial (django-mongodb-backend), which the embedded
        # planner never uses: this plain twin is what finds an original's reservation.
        indexes = [models.Index(fields=["original"], name="reservation_original")]
