"""The customer's payee pages (payees.views)."""

from django.urls import path

from payees import views

app_name = "payees"

urlpatterns = [
    path("payees", views.payee_list, name="list"),
    path("payees/new", views.payee_new, name="new"),
    path("payees/<str:payee_id>/rename", views.payee_rename_page, name="rename"),
    path("payees/<str:payee_id>/remove", views.payee_remove_page, name="remove"),
]
