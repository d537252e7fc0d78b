"""`manage.py print_app_role`: the mongosh command that creates the app's least-privilege role.

Insert and find only on the ledger and the audit log; find, insert, update and remove on the other
collections; nothing else (no index, collection or user management: migrations run as a deployer).
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from aegis.deployment import app_role_command


class Command(BaseCommand):
    help = "Print the mongosh createRole command for the app's least-privilege role."

    def add_arguments(self, parser):
        parser.add_argument("--role", default="aegisApp")

    def handle(self, *args, role="aegisApp", **options):
        self.stdout.write(app_role_command(database=settings.DATABASES["default"]["NAME"], role=role))
