from django.apps import AppConfig


class AegisConfig(AppConfig):
    name = "aegis"
    default_auto_field = "django_mongodb_backend.fields.ObjectIdAutoField"

    def ready(self):
        # Before any request handler or MongoDB client exists (both are built lazily, after
        # django.setup()): the instrumentations only see what is created after them.
        from aegis.tracing import configure_from_environment

        configure_from_environment()
