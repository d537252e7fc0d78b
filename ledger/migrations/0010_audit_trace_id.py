from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("ledger", "0009_payee_actions"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditlog",
            name="trace_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
    ]
