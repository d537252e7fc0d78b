"""Django admin for transactions: view only (money moves through transfers.services alone)."""

from django.contrib import admin

from ledger.admin import ReadOnlyAdmin
from transfers.models import Transaction


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "status", "amount", "retry_count", "from_account_id", "to_account_id")
    list_filter = ("status", "kind")
    search_fields = ("idempotency_key",)
    ordering = ("-created_at",)
    exclude = ("fingerprint", "attempt_id")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude]
