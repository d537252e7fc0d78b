"""A customer's saved payees: an account they pay, under a nickname they chose.

Saving a payee is where its holder's name is confirmed (confirmation of payee): the customer
sees the masked registered name and confirms it before the payee exists, so paying a saved payee
needs no second check. The masked name seen then is kept, so the list shows whom each nickname
pays without looking every holder up again.
"""

from django.db import models
from django.utils import timezone

MAX_PAYEES = 100  # per customer: a list a person can scan, and a bound on every read of it
NICKNAME_MAX = 40


class Payee(models.Model):
    owner = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+", db_index=False)
    nickname = models.CharField(max_length=NICKNAME_MAX)
    holder_name = models.CharField(max_length=120)  # masked, as confirmed when saved ("Ravi K.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "payees"
        constraints = [models.UniqueConstraint(fields=["owner", "account"], name="payee_once_per_owner")]
        indexes = [
            models.Index(fields=["owner", "nickname", "id"], name="payee_owner_nickname"),  # the list
            # The unique constraint's index is partial, which the embedded server's planner never
            # uses: this plain twin serves "is this account one of my payees?".
            models.Index(fields=["owner", "account"], name="payee_owner_account"),
        ]

    def __str__(self) -> str:
        return f"{self.nickname} ({self.account_id})"
