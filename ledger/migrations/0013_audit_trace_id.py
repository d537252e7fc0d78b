from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("ledger", "0012_audit_seals"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditlog",
            name="trace_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
    ]
