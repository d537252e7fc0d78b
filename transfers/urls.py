"""Customer page routes for transfers (namespace `transfers`)."""

from django.urls import path

from transfers import views

app_name = "transfers"

urlpatterns = [
    path("transfer", views.transfer_page, name="create"),
    path("transactions", views.transaction_list, name="list"),
]
