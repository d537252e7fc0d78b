"""Notification pages (namespace `notifications`)."""

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("notifications", views.notification_list, name="list"),
    path("notifications/poll", views.notification_poll, name="poll"),
    path("notifications/read-all", views.notifications_read_all, name="read_all"),
    path("notifications/<str:notification_id>/read", views.notification_read, name="read"),
]
