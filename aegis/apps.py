from django.apps import AppConfig


class AegisConfig(AppConfig):
    name = "aegis"
    default_auto_field = "django_mongodb_backend.fields.ObjectIdAutoField"
