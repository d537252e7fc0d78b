"""The app's URLs plus two views that fail unexpectedly (a page and an API route), for tests."""

from django.urls import path

from accounts.policy import PUBLIC, policy
from aegis.urls import handler400, handler403, handler404, handler500  # noqa: F401
from aegis.urls import urlpatterns as app_patterns

SECRET_DETAIL = "connection string mongodb://admin:hunter2@db-internal"


@policy(PUBLIC)
def boom_page(request):
    raise RuntimeError(SECRET_DETAIL)


@policy(PUBLIC)
def boom_api(request):
    raise RuntimeError(SECRET_DETAIL)


urlpatterns = [path("boom", boom_page), path("api/boom", boom_api), *app_patterns]
