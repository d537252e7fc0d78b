"""Plain (non-partial) indexes beside the unique ones, for the lookups every request makes.

django-mongodb-backend builds each unique constraint as a *partial* index (`$type` filters, to
keep SQL's "NULLs are distinct"). The embedded server's planner never chooses a partial index
unless hinted, and the ORM cannot hint, so without these the session lookup, the login by email
and the account of a user each scanned their whole collection on every request. On MongoDB the
partial unique index serves these queries and these are merely redundant.
"""

from django.db import migrations

# The session lookup filters on the key and on expire_date: only a compound index of both is
# chosen for that `$and` (with the key alone the planner still scanned).
LOOKUPS = [
    ("django_session", [("session_key", 1), ("expire_date", 1)], "session_key_lookup"),
    ("users", [("email", 1)], "user_email_lookup"),
    ("accounts", [("user_id", 1)], "account_user_lookup"),
]


def create(apps, schema_editor):
    db = schema_editor.connection.database
    for collection, keys, name in LOOKUPS:
        db[collection].create_index(keys, name=name)


def drop(apps, schema_editor):
    db = schema_editor.connection.database
    for collection, _keys, name in LOOKUPS:
        db[collection].drop_index(name)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_rate_limit_counters"),
        ("sessions", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, drop)]
