"""The hash chains' fields (ledger.chain). The reconcile checkpoints from before them are dropped:
they carry no hash to continue a chain from, so the next `reconcile --incremental` is a full run."""

from django.db import migrations, models


def forget_checkpoints(apps, schema_editor):
    schema_editor.connection.database["ledger_reconcile_checkpoints"].delete_many({})



class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0010_audit_by_user_and_plural"),
    ]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="prev_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="ledgerentry",
            name="hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="reconcilecheckpoint",
            name="hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
            migrations.RunPython(forget_checkpoints, migrations.RunPython.noop),
    ]
