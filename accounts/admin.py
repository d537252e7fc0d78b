"""Django admin for users and accounts: view only. Balances change through the ledger alone;
freeze/unfreeze is on the staff console (/staff/), which audit-logs it."""

from django.contrib import admin

from accounts.models import Account, User
from ledger.admin import ReadOnlyAdmin


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    list_display = ("email", "name", "role", "is_system", "is_active", "date_joined")
    list_filter = ("role", "is_active")
    search_fields = ("email",)
    exclude = ("password",)
    ordering = ("-date_joined",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "password"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "status", "currency", "balance", "created_at")
    list_filter = ("status",)
    ordering = ("-created_at",)
