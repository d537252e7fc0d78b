"""Customer page routes for statements and receipts (namespace `statements`)."""

from django.urls import path

from statements import views

app_name = "statements"

urlpatterns = [
    path("statement", views.statement_page, name="statement"),
    path("statement/download", views.statement_download, name="download"),
    path("transactions/<str:transaction_id>", views.receipt_page, name="receipt"),
    path("transactions/<str:transaction_id>/receipt.pdf", views.receipt_pdf, name="receipt-pdf"),
]
