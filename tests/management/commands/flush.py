"""The suite's `flush`: what pytest-django runs after every test to give the next one an empty
database, made cheap without changing what the next test finds.

Django's flush empties every collection, content types and permissions included, and then sends
`post_migrate` so that contenttypes and auth write those back, as migrate did: about 100 round
trips, most of a test's teardown. Those rows are the same after every flush (nothing in Aegis
writes them), so this one leaves them in place and sends no signal, and it asks the server for
the capped collections once instead of once a collection. Every other collection is emptied as
before; indexes stay, as they do with Django's flush. Only the test settings install it
(tests/settings.py adds the `tests` app); `manage.py flush` in production is Django's own.
"""

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.commands import flush
from django.db import connections

# Written by migrate's post_migrate, never by the application: kept across flushes.
KEPT = {ContentType._meta.db_table, Permission._meta.db_table}


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        if options["interactive"]:  # a person typed it: Django's own, questions and all
            return super().handle(**options)
        database = connection.database
        capped = {info["name"] for info in database.list_collections() if info.get("options", {}).get("capped")}
        for table in connection.introspection.django_table_names(only_existing=True, include_views=False):
            if table in KEPT or table in capped or table.startswith("system."):
                continue
            database[table].delete_many({})
