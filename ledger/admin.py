"""Django admin for the append-only records: view only (no add, change or delete, ever).

`ReadOnlyAdmin` is the one base every registered model uses (accounts, ledger, transfers): the
admin lists records for superusers and offers nothing else. There is no add, change or delete
page, no bulk action, and no per-record form (the change URL answers 403 as add and delete do:
even a disabled form invites the question "why can I not save?"). Money columns are rupees with
the Indian grouping (`money_column`), never raw paise.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied

from aegis.money import format_inr
from ledger.models import AuditLog, LedgerEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    """Superusers may look at the lists; nobody may add, change or delete through the admin."""

    actions = None  # not even "delete selected"
    list_display_links = None  # rows do not link to a change form

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        raise PermissionDenied  # the list shows each record; the staff console has the detail pages

    def history_view(self, request, object_id, extra_context=None):
        raise PermissionDenied  # nothing is ever changed here, so there is no history to show


def money_column(field: str, description: str):
    """A list column showing integer paise `field` as ₹ with the Indian grouping, sortable by it."""

    @admin.display(description=description, ordering=field)
    def column(self, obj):
        return format_inr(getattr(obj, field))

    column.__name__ = f"{field}_inr"
    return column


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account_id", "type", "amount_inr", "balance_after_inr", "seq", "transaction_id")
    list_filter = ("type",)
    ordering = ("-created_at",)
    amount_inr = money_column("amount", "Amount")
    balance_after_inr = money_column("balance_after", "Balance after")


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "status", "user_id", "actor_id", "transaction_id")
    list_filter = ("action", "status")
    ordering = ("-created_at",)
