"""The double-entry ledger and the audit log: both append-only."""

from django.db import models
from django.utils import timezone

from aegis.append_only import AppendOnlyModel


class EntryType(models.TextChoices):
    DEBIT = "DEBIT", "Debit"
    CREDIT = "CREDIT", "Credit"


class LedgerEntry(AppendOnlyModel):
    # The account's entries are read by the unique (account, seq) index: `seq` is dense, so a
    # page is an exact seq range. The FK's own single-field index would be its redundant prefix.
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+", db_index=False)
    transaction = models.ForeignKey("transfers.Transaction", on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=6, choices=EntryType.choices)
    amount = models.BigIntegerField()  # paise, always > 0
    balance_after = models.BigIntegerField()
    seq = models.BigIntegerField()  # the account's ledger_seq after this posting
    currency = models.CharField(max_length=3, default="INR")
    created_at = models.DateTimeField(default=timezone.now)
    # The account's hash chain (ledger.chain): the previous entry's hash ("" for the first) and
    # this one's, over its content and prev_hash. reconcile recomputes both.
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "ledger_entries"
        verbose_name_plural = "ledger entries"  # not Django's "ledger entrys"
        # The unique constraint below is built as a *partial* index, which the embedded server's
        # planner never uses: this plain twin is what makes a history page an exact seq range read.
        indexes = [models.Index(fields=["account", "seq"], name="ledger_account_seq")]
        constraints = [
            models.UniqueConstraint(fields=["account", "seq"], name="ledger_account_seq_unique"),
        ]


class AuditAction(models.TextChoices):
    TRANSFER_SUCCESS = "TRANSFER_SUCCESS"
    TRANSFER_FAILED = "TRANSFER_FAILED"
    SYSTEM_TRANSFER_SUCCESS = "SYSTEM_TRANSFER_SUCCESS"
    SYSTEM_TRANSFER_FAILED = "SYSTEM_TRANSFER_FAILED"
    TRANSFER_RECOVERED = "TRANSFER_RECOVERED"
    ACCOUNT_CREATED = "ACCOUNT_CREATED"
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"
    ACCOUNT_UNFROZEN = "ACCOUNT_UNFROZEN"
    LOGIN_SUCCESS = "LOGIN_SUCCESS"
    LOGIN_FAILED = "LOGIN_FAILED"
    LOGOUT = "LOGOUT"
    USER_REGISTERED = "USER_REGISTERED"
    PASSWORD_CHANGED = "PASSWORD_CHANGED"  # noqa: S105 (an audit action name, not a secret)
    SIGNED_OUT_EVERYWHERE = "SIGNED_OUT_EVERYWHERE"
    OUTBOX_REQUEUED = "OUTBOX_REQUEUED"
    STATEMENT_DOWNLOADED = "STATEMENT_DOWNLOADED"  # by staff: who looked at whose statement
    PAYEE_ADDED = "PAYEE_ADDED"
    PAYEE_RENAMED = "PAYEE_RENAMED"
    PAYEE_REMOVED = "PAYEE_REMOVED"
    REVERSAL_COMPLETED = "REVERSAL_COMPLETED"
    REVERSAL_FAILED = "REVERSAL_FAILED"
    DISPUTE_OPENED = "DISPUTE_OPENED"
    DISPUTE_REJECTED = "DISPUTE_REJECTED"
    DISPUTE_RESOLVED = "DISPUTE_RESOLVED"
    REVERSAL_PROPOSED = "REVERSAL_PROPOSED"
    REVERSAL_APPROVED = "REVERSAL_APPROVED"
    REVERSAL_REJECTED = "REVERSAL_REJECTED"
    REVERSAL_EXPIRED = "REVERSAL_EXPIRED"
    REVERSAL_CANCELLED = "REVERSAL_CANCELLED"
    REVERSAL_RETRIED = "REVERSAL_RETRIED"
    TWO_FACTOR_ENROLLED = "TWO_FACTOR_ENROLLED"
    TWO_FACTOR_FAILED = "TWO_FACTOR_FAILED"  # a wrong, reused or rate-limited code
    TWO_FACTOR_RECOVERY_USED = "TWO_FACTOR_RECOVERY_USED"
    TWO_FACTOR_RESET = "TWO_FACTOR_RESET"  # by another administrator (actor_id)


class AuditLog(AppendOnlyModel):
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    status = models.CharField(max_length=16)  # SUCCESS | FAILURE
    user_id = models.CharField(max_length=24, blank=True, default="")  # whose record it is
    # Who did it, when that is someone else: the staff member behind a funding, freeze,
    # unfreeze or requeue; the sender of a transfer. Empty for the person's own sign-in etc.
    actor_id = models.CharField(max_length=24, blank=True, default="")
    transaction_id = models.CharField(max_length=24, blank=True, default="")
    details = models.JSONField(default=dict)
    request_id = models.CharField(max_length=64, blank=True, default="")
    trace_id = models.CharField(max_length=32, blank=True, default="")  # aegis/tracing.py; "" when off
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "audit_logs"
        indexes = [
            models.Index(fields=["action", "created_at"], name="audit_action_created"),
            # A receipt's attempt history: the few entries of one transaction.
            models.Index(fields=["transaction_id", "created_at"], name="audit_transaction_created"),
            # A person's trail on the staff user page: a bounded window of one user's entries.
            models.Index(fields=["user_id", "created_at", "id"], name="audit_user_created"),
            # Sealing and verifying the log in (created_at, _id) order, a bounded range at a time.
            models.Index(fields=["created_at", "id"], name="audit_created_id"),
        ]


class AuditSeal(AppendOnlyModel):
    """A sealed digest of the audit log up to an instant (ledger.seals): SHA-256 over every entry
    in (created_at, _id) order since the previous seal, chained to that seal's digest. Written by
    `manage.py seal_audit` off the request path; `reconcile` recomputes them."""

    seq = models.BigIntegerField(unique=True)  # 1, 2, ...: the seals' own chain
    through_at = models.DateTimeField()  # the last sealed entry's (created_at, _id)
    through_id = models.CharField(max_length=24)
    entries = models.BigIntegerField()  # how many entries this seal covers
    digest = models.CharField(max_length=64)
    prev_digest = models.CharField(max_length=64, blank=True, default="")
    sealed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "audit_seals"
        # The unique index is partial (never planned by the embedded server): a plain twin for "the last seal".
        indexes = [models.Index(fields=["seq"], name="audit_seal_seq")]


class ReconcileCheckpoint(models.Model):
    """How far each account's ledger chain was last verified clean (`reconcile --incremental`).

    Written only by a reconcile run that found no violation, so a corrupted range never becomes
    the base the next incremental run trusts.
    """

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="+")
    seq = models.BigIntegerField()  # the last verified entry's seq (0: the account had none)
    balance_after = models.BigIntegerField()  # its balance_after: where the next entry must chain from
    hash = models.CharField(max_length=64, blank=True, default="")  # its hash: where the hash chain continues
    verified_at = models.DateTimeField()  # when the run read the account (before walking its entries)

    class Meta:
        db_table = "ledger_reconcile_checkpoints"
