"""Page routes for identity and the dashboard (namespace `accounts`)."""

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login", views.login_page, name="login"),
    path("logout", views.logout_page, name="logout"),
    path("session/keepalive", views.session_keepalive, name="session-keepalive"),
    path("register", views.register_page, name="register"),
    path("dashboard", views.dashboard, name="dashboard"),
    path("account/password", views.password_change, name="password-change"),
    path("account/two-factor", views.two_factor_settings_page, name="two-factor"),
    path("account/two-factor/enrol", views.two_factor_enrol_page, name="two-factor-enrol"),
    path("login/code", views.two_factor_verify_page, name="two-factor-verify"),
    path("account/open", views.account_create_page, name="account-create"),
]
