"""Exact unread counters (`notification_counters`, one document per person, `_id` = the user's id).

Seeded once from the notifications unread at migration time; from then on the services keep
each counter exact in the same transaction as the change it counts (notifications/services.py).
"""

import django_mongodb_backend.fields
from django.db import migrations, models


def seed_counters(apps, schema_editor):
    # One pass over the unread notifications at migration time (a scan, once): the running
    # app never counts, it only increments and decrements these in its transactions.
    db = schema_editor.connection.database
    notifications = db[apps.get_model("notifications", "Notification")._meta.db_table]
    counters = db[apps.get_model("notifications", "NotificationCounter")._meta.db_table]
    unread = notifications.aggregate([{"$match": {"read_at": None}}, {"$group": {"_id": "$user_id", "n": {"$sum": 1}}}])
    for row in unread:
        counters.update_one({"_id": row["_id"]}, {"$set": {"unread": row["n"]}}, upsert=True)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_bounded_read_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="NotificationCounter",
            fields=[
                (
                    "user_id",
                    django_mongodb_backend.fields.ObjectIdField(db_column="_id", primary_key=True, serialize=False),
                ),
                ("unread", models.BigIntegerField(default=0)),
                ("marked_read_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "notification_counters",
            },
        ),
        migrations.RunPython(seed_counters, migrations.RunPython.noop),
    ]
