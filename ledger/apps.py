from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    default_auto_field = "django_mongodb_backend.fields.ObjectIdAutoField"
