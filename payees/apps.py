from django.apps import AppConfig


class PayeesConfig(AppConfig):
    name = "payees"
    default_auto_field = "django_mongodb_backend.fields.ObjectIdAutoField"
