"""django-mongodb-backend, taught to read the aware datetimes our client is configured to return.

See base.py: the settings give the MongoClient `tz_aware=True`, so pymongo and the ORM hand back
the same kind of value for the same stored instant.
"""
