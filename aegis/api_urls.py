"""The JSON API under /api (DESIGN §5). Every view here declares an `aegis.policy.policy`."""

from django.urls import path

from accounts import api as accounts_api
from adminpanel import api as admin_api
from aegis import openapi
from transfers import api as transfers_api

app_name = "api"

urlpatterns = [
    path("auth/register", accounts_api.register, name="auth-register"),
    path("auth/login", accounts_api.login, name="auth-login"),
    path("auth/logout", accounts_api.logout, name="auth-logout"),
    path("accounts", accounts_api.accounts, name="accounts"),
    path("accounts/balance/<str:account_id>", accounts_api.balance, name="account-balance"),
    path("transactions", transfers_api.transaction_create, name="transactions"),
    path("transactions/system/initial-funds", transfers_api.system_initial_funds, name="system-initial-funds"),
    path("transactions/<str:account_id>", transfers_api.transaction_history, name="transaction-history"),
    path("admin/freeze/<str:account_id>", accounts_api.admin_freeze, name="admin-freeze"),
    path("admin/unfreeze/<str:account_id>", accounts_api.admin_unfreeze, name="admin-unfreeze"),
    path("admin/users", admin_api.admin_users, name="admin-users"),
    path("admin/transactions", admin_api.admin_transactions, name="admin-transactions"),
    path("admin/stats", admin_api.admin_stats, name="admin-stats"),
    path("openapi.json", openapi.openapi_json, name="openapi"),
    path("docs", openapi.api_docs, name="docs"),
]
