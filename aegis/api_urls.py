"""The JSON API under /api (DESIGN §5). Every view here declares an `aegis.policy.policy`."""

from django.urls import path

from accounts import api as accounts_api

app_name = "api"

urlpatterns = [
    path("auth/register", accounts_api.register, name="auth-register"),
    path("auth/login", accounts_api.login, name="auth-login"),
    path("auth/logout", accounts_api.logout, name="auth-logout"),
    path("accounts", accounts_api.accounts, name="accounts"),
    path("accounts/balance/<str:account_id>", accounts_api.balance, name="account-balance"),
    path("admin/freeze/<str:account_id>", accounts_api.admin_freeze, name="admin-freeze"),
    path("admin/unfreeze/<str:account_id>", accounts_api.admin_unfreeze, name="admin-unfreeze"),
]
