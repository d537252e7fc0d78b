"""The database engine: django-mongodb-backend with one converter that accepts aware datetimes.

The client is created with `tz_aware=True, tzinfo=UTC` (DATABASES OPTIONS), so pymongo reads on
the money path and ORM reads both return aware UTC datetimes; before, pymongo handed back naive
UTC values that templates then showed 5½ hours off the ORM's. django-mongodb-backend 5.2.4
assumes the driver returns naive UTC and calls `make_aware`, which refuses an aware value.
Writes need nothing: the backend makes aware values naive UTC before they reach pymongo, and
pymongo encodes aware values as UTC anyway.
"""

from django.utils import timezone
from django_mongodb_backend.base import DatabaseWrapper as MongoDatabaseWrapper
from django_mongodb_backend.operations import DatabaseOperations as MongoDatabaseOperations


class DatabaseOperations(MongoDatabaseOperations):
    def convert_datetimefield_value(self, value, expression, connection):
        if value is None:
            return None
        if timezone.is_aware(value):
            # Already the instant the server stored; only its zone may need to change. (This
            # converter only runs with USE_TZ, where connection.timezone is UTC by default.)
            return value.astimezone(self.connection.timezone)
        return super().convert_datetimefield_value(value, expression, connection)


class DatabaseWrapper(MongoDatabaseWrapper):
    ops_class = DatabaseOperations
