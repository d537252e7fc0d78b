"""The customer's payee pages (payees.views)."""

app_name = "payees"

urlpatterns: list = []
