"""Transfers (the business event record) and the statistics rollups."""

from django.db import models
from django.utils import timezone
from django_mongodb_backend.fields import ArrayField, ObjectIdField


class TransactionStatus(models.TextChoices):
    INITIATED = "INITIATED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class TransactionKind(models.TextChoices):
    TRANSFER = "TRANSFER"
    SYSTEM_FUNDING = "SYSTEM_FUNDING"
    # Money returned from an original's receiver to its sender (a dispute, an erroneous funding),
    # approved by a second staff member (disputes.services). Linked both ways: `reverses` here,
    # `reversed_by` and `reversed_amount` on the original.
    REVERSAL = "REVERSAL"


MAX_USER_RETRIES = 3
# The claim's bookkeeping, never shown to a client or a page.
INTERNAL_FIELDS = {"fingerprint": 0, "attempt_id": 0}


class Transaction(models.Model):
    # No single-field FK indexes: each is a prefix of a compound index below, and every extra
    # index is one more write on every transfer.
    from_account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+", db_index=False)
    to_account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+", db_index=False)
    amount = models.BigIntegerField()  # paise
    currency = models.CharField(max_length=3, default="INR")
    note = models.CharField(max_length=140, blank=True, default="")
    kind = models.CharField(max_length=16, choices=TransactionKind.choices, default=TransactionKind.TRANSFER)
    status = models.CharField(max_length=10, choices=TransactionStatus.choices, default=TransactionStatus.INITIATED)
    retry_count = models.IntegerField(default=0)
    failure_reason = models.CharField(max_length=200, blank=True, default="")
    failure_code = models.CharField(max_length=40, blank=True, default="")
    idempotency_key = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64)
    # The claim of the attempt in flight: only its holder may settle it, until the lease ends.
    attempt_id = models.CharField(max_length=32, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    initiated_by = models.CharField(max_length=24, blank=True, default="")
    # Reversals (kind REVERSAL) point at their original; the original sums what was returned,
    # which never exceeds its amount (guarded in the money transaction: transfers.services).
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    reversed_by = ArrayField(ObjectIdField(), default=list, blank=True)
    reversed_amount = models.BigIntegerField(default=0)  # paise, COMPLETED reversals only
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "transactions"
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key", "from_account"], name="txn_idempotency_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="txn_status_lease"),
            # The idempotency look-up (a replay, the page's "is this key already used?"): the unique
            # constraint's index is partial, which the embedded server's planner never uses, so
            # without this plain twin every look-up scanned the collection.
            models.Index(fields=["from_account", "idempotency_key"], name="txn_from_key"),
            # The listings walk these newest first in bounded time windows (aegis/keyset.py);
            # `_id` last makes every key unique, so a cursor names one row exactly.
            models.Index(fields=["from_account", "created_at", "id"], name="txn_from_created_id"),
            models.Index(fields=["to_account", "created_at", "id"], name="txn_to_created_id"),
            models.Index(fields=["status", "created_at", "id"], name="txn_status_created_id"),
            # The staff listing filtered by account AND status: the embedded server's planner scans
            # the collection when a filter has a field its candidate index lacks.
            models.Index(fields=["from_account", "status", "created_at", "id"], name="txn_from_status_created_id"),
            models.Index(fields=["to_account", "status", "created_at", "id"], name="txn_to_status_created_id"),
            models.Index(fields=["created_at", "id"], name="txn_created_id"),
        ]


class StatsRollup(models.Model):
    """One shard of one rollup of the transfer statistics (written by `transfers.rollups`).

    `scope` is "total" (all time, `day` empty) or "day" (one IST day of `created_at`). A reader
    sums the shards of a (scope, day); a writer touches one shard, chosen by the transaction id,
    so concurrent dispatchers rarely write the same document.
    """

    scope = models.CharField(max_length=8)
    day = models.CharField(max_length=10, blank=True, default="")
    shard = models.IntegerField(default=0)
    completed = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    volume = models.BigIntegerField(default=0)  # paise, completed customer transfers only
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "stats_rollups"
        # Not unique on purpose: readers sum every document of a (scope, day), so a duplicate left
        # by two first writers racing is still counted right (and a unique constraint here would be
        # a partial index on field types, which the reads could not use).
        indexes = [models.Index(fields=["scope", "day", "shard"], name="stats_rollup_key")]
