# Issue 19: a person's audit trail on the staff user page (a bounded window per user), and the
# admin's plural "ledger entries".

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0009_payee_actions'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='ledgerentry',
            options={'verbose_name_plural': 'ledger entries'},
        ),
        migrations.AddIndex(
            model_name='auditlog',
            index=models.Index(fields=['user_id', 'created_at', 'id'], name='audit_user_created'),
        ),
    ]
