# The outbox's models moved here from transfers (OutboxEvent) and notifications (OutboxDelivery,
# DispatcherHeartbeat). Their collections and indexes stay exactly as those apps created them:
# this migration only takes them over in Django's state, so a database keeps every event.

import django.utils.timezone
import django_mongodb_backend.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("transfers", "0004_account_status_indexes"),
        ("notifications", "0003_notification_counters"),
    ]

    state_operations = [
        migrations.CreateModel(
            name="OutboxEvent",
            fields=[
                ("id", django_mongodb_backend.fields.ObjectIdAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("event_type", models.CharField(max_length=40)),
                ("aggregate_id", models.CharField(max_length=24)),
                ("payload", models.JSONField(default=dict)),
                ("status", models.CharField(choices=[("PENDING", "Pending"), ("DELIVERED", "Delivered"), ("PARKED", "Parked")], default="PENDING", max_length=10)),
                ("attempts", models.IntegerField(default=0)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("delivered_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "outbox_events",
                "indexes": [models.Index(fields=["status", "created_at"], name="outbox_status_created")],
            },
        ),
        migrations.CreateModel(
            name="OutboxDelivery",
            fields=[
                ("id", django_mongodb_backend.fields.ObjectIdAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("event_id", models.CharField(max_length=24)),
                ("handler", models.CharField(max_length=40)),
                ("dispatcher", models.CharField(blank=True, default="", max_length=80)),
                ("delivered_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "db_table": "outbox_deliveries",
                "constraints": [models.UniqueConstraint(fields=("event_id", "handler"), name="outbox_delivery_unique")],
            },
        ),
        migrations.CreateModel(
            name="DispatcherHeartbeat",
            fields=[
                ("id", django_mongodb_backend.fields.ObjectIdAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=80, unique=True)),
                ("beat_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("pid", models.IntegerField(default=0)),
                ("delivered", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "outbox_dispatchers"},
        ),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=state_operations, database_operations=[])]
