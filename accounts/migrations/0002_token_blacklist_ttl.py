"""A TTL index expires revoked tokens once they could no longer be used (JWTs live 3 days)."""

from django.db import migrations

TTL_SECONDS = 3 * 24 * 60 * 60


def create_ttl_index(apps, schema_editor):
    model = apps.get_model("accounts", "BlacklistedToken")
    collection = schema_editor.connection.database[model._meta.db_table]
    collection.create_index("created_at", expireAfterSeconds=TTL_SECONDS, name="token_blacklist_ttl")


def drop_ttl_index(apps, schema_editor):
    model = apps.get_model("accounts", "BlacklistedToken")
    schema_editor.connection.database[model._meta.db_table].drop_index("token_blacklist_ttl")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_ttl_index, drop_ttl_index)]
