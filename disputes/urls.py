"""Customer page routes for disputes (namespace `disputes`)."""

from django.urls import path

from disputes import views

app_name = "disputes"

urlpatterns = [
    path("disputes", views.dispute_list, name="list"),
    path("disputes/new", views.dispute_new, name="new"),
    path("disputes/<str:dispute_id>", views.dispute_detail, name="detail"),
]
