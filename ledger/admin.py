"""Django admin for the append-only records: view only (no add, change or delete, ever)."""

from django.contrib import admin

from ledger.models import AuditLog, LedgerEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    """Superusers may look; nobody may add, change or delete through the admin."""

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


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account_id", "type", "amount", "balance_after", "seq", "transaction_id")
    list_filter = ("type",)
    ordering = ("-created_at",)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "status", "user_id", "actor_id", "transaction_id")
    list_filter = ("action", "status")
    ordering = ("-created_at",)
