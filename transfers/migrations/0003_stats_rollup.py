import django_mongodb_backend.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('transfers', '0002_bounded_read_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='StatsRollup',
            fields=[
                ('id', django_mongodb_backend.fields.ObjectIdAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scope', models.CharField(max_length=8)),
                ('day', models.CharField(blank=True, default='', max_length=10)),
                ('shard', models.IntegerField(default=0)),
                ('completed', models.BigIntegerField(default=0)),
                ('failed', models.BigIntegerField(default=0)),
                ('volume', models.BigIntegerField(default=0)),
                ('updated_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'db_table': 'stats_rollups',
                'indexes': [models.Index(fields=['scope', 'day', 'shard'], name='stats_rollup_key')],
            },
        ),
    ]
