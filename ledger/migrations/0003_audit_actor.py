from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0002_audit_actions'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditlog',
            name='actor_id',
            field=models.CharField(blank=True, default='', max_length=24),
        ),
    ]
