"""Django admin for transactions: view only (money moves through transfers.services alone)."""

from django.contrib import admin

from ledger.admin import ReadOnlyAdmin, money_column
from transfers.models import Transaction


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "status", "amount_inr", "retry_count", "from_account_id", "to_account_id")
    list_filter = ("status", "kind")
    search_fields = ("idempotency_key",)
    ordering = ("-created_at",)
    amount_inr = money_column("amount", "Amount")
