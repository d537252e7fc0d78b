"""The MongoDB handles the money path uses, and the one clear line for an unreachable server.

The money path talks to MongoDB directly through pymongo sessions. It reuses the client that
django-mongodb-backend creates lazily in each process (so it is never created before a
worker fork), and never shares a session between threads.
"""

from django.conf import settings
from django.db import connections
from pymongo import ReadPreference
from pymongo.database import Database
from pymongo.mongo_client import MongoClient
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

# Every money-moving transaction runs with these (DESIGN §4, property 3).
TXN_OPTIONS = {
    "read_concern": ReadConcern("snapshot"),
    "write_concern": WriteConcern("majority"),
    "read_preference": ReadPreference.PRIMARY,
}


def get_db() -> Database:
    return connections["default"].database


def get_client() -> MongoClient:
    return get_db().client


def collection(model):
    """The pymongo collection behind a Django model."""
    return get_db()[model._meta.db_table]


def db_ping() -> bool:
    try:
        get_db().command("ping")
        return True
    except Exception:  # any failure to answer means "not ready"
        return False


def unreachable_message(exc: Exception | None = None) -> str:
    uri = settings.DATABASES["default"]["HOST"]
    return (
        f"aegis: cannot reach MongoDB at {uri} — start the embedded server with `make db` "
        f"(or `make run`), or set MONGODB_URI to a running deployment."
    )
