from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.urls import include, path

from aegis import metrics, views


def _admin_login(request, extra_context=None):
    # One login form for everyone: the admin site's own would bypass the strict and per-account
    # login limits and the LOGIN_FAILED audit.
    return redirect_to_login(request.GET.get("next") or "/django-admin/", login_url="accounts:login")


admin.site.login = _admin_login
admin.site.site_header = "Aegis · Django admin (read-only records)"
admin.site.site_title = "Aegis admin"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", metrics.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("", views.landing, name="landing"),
    path("api/", include("aegis.api_urls")),
    path("", include("accounts.urls")),
    path("", include("transfers.urls")),
    path("", include("statements.urls")),
    path("", include("disputes.urls")),
    path("", include("payees.urls")),
    path("staff/", include("adminpanel.urls")),
    path("", include("notifications.urls")),
    path("django-admin/", admin.site.urls),
]

# What Django answers itself: JSON under /api, elsewhere our friendly templates (400.html,
# 403.html, 404.html, 413.html, 500.html). 500.html is self-contained: it renders even when the
# database is down.
handler400 = "aegis.api_errors.bad_request"
handler403 = "aegis.api_errors.permission_denied"
handler404 = "aegis.api_errors.page_not_found"
handler500 = "aegis.api_errors.server_error"
