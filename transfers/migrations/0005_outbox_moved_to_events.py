# OutboxEvent moved to the events app (events/migrations/0001). State only: the outbox_events
# collection and its index stay, now owned by events.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("transfers", "0004_account_status_indexes"),
        ("events", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="OutboxEvent")]),
    ]
