# OutboxDelivery and DispatcherHeartbeat moved to the events app (events/migrations/0001). State
# only: the outbox_deliveries and outbox_dispatchers collections and their indexes stay.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_notification_counters"),
        ("events", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="OutboxDelivery"),
                migrations.DeleteModel(name="DispatcherHeartbeat"),
            ]
        ),
    ]
