"""Django admin for users and accounts: view only. Balances change through the ledger alone;
freeze/unfreeze is on the staff console (/staff/), which audit-logs it.

Groups are not offered at all: Aegis authorises by `User.role` (accounts.policy), never by
Django groups or permissions, so an "Add group" page would only suggest a control that does
nothing.
"""

from django.contrib import admin
from django.contrib.auth.models import Group

from accounts.models import Account, User
from ledger.admin import ReadOnlyAdmin, money_column

if admin.site.is_registered(Group):  # django.contrib.auth's admin (loaded first) registers it
    admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    list_display = ("email", "name", "role", "is_system", "is_active", "date_joined")
    list_filter = ("role", "is_active")
    search_fields = ("email",)
    ordering = ("-date_joined",)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "status", "currency", "balance_inr", "created_at")
    list_filter = ("status",)
    ordering = ("-created_at",)
    balance_inr = money_column("balance", "Balance")
