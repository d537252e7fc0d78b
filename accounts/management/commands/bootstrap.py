from django.core.management.base import BaseCommand

from accounts.services import system_bootstrap


class Command(BaseCommand):
    help = "Create the system user, its funding account and the first admin (idempotent)."

    def handle(self, *args, **options):
        result = system_bootstrap()
        for role, creds in result.generated.items():
            self.stdout.write(self.style.WARNING(f"Generated {role} login (shown once): {creds}"))
        self.stdout.write(
            f"System user {result.system_user.email}, funding account {result.system_account.pk}; "
            f"admin {result.admin_user.email}. Credentials are kept in var/credentials.json."
        )
