from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.services import system_bootstrap


class Command(BaseCommand):
    help = "Create the system user, its funding account and the first admin (idempotent)."

    def handle(self, *args, **options):
        credentials_path = settings.VAR_DIR / "credentials.json"
        result = system_bootstrap(credentials_path=credentials_path)
        # Only the run that creates a user shows its login: the operator has no other way to learn
        # a generated password, and later runs print nothing secret.
        for role, login in result.created.items():
            self.stdout.write(self.style.WARNING(f"Created the {role} login: {login}"))
        self.stdout.write(
            f"System user {result.system_user.email}, funding account {result.system_account.pk}; "
            f"admin {result.admin_user.email}. Credentials are kept in {credentials_path} (mode 600)."
        )
