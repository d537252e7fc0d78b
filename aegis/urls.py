from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.urls import include, path

from aegis import views


def _admin_login(request, extra_context=None):
    # One login form for everyone: the admin site's own would bypass the strict and per-account
    # login limits and the LOGIN_FAILED audit.
    return redirect_to_login(request.GET.get("next") or "/django-admin/", login_url="accounts:login")


admin.site.login = _admin_login

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.landing, name="landing"),
    path("api/", include("aegis.api_urls")),
    path("", include("accounts.urls")),
    path("django-admin/", admin.site.urls),
]
