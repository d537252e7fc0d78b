from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_plain_lookup_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="user",
            index=models.Index(fields=["is_system", "date_joined", "id"], name="users_listing"),
        ),
    ]
