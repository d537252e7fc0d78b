from django.contrib import admin
from django.urls import path

from aegis import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.landing, name="landing"),
    path("django-admin/", admin.site.urls),
]
