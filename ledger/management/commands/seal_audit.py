"""`manage.py seal_audit [--loop --interval 60]`: seal the audit log up to a few minutes ago (ledger.seals)."""

import time

from django.core.management.base import BaseCommand

from ledger.seals import audit_seal_all


class Command(BaseCommand):
    help = "Seal the audit log's entries older than a few minutes into chained digests that reconcile verifies."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep sealing every --interval seconds")
        parser.add_argument("--interval", type=float, default=60.0)

    def handle(self, *args, loop=False, interval=60.0, **options):
        while True:
            for seal in audit_seal_all():
                through = f"{seal['through_at']:%Y-%m-%d %H:%M:%S} UTC"
                self.stdout.write(f"audit seal {seal['seq']}: {seal['entries']} entries through {through}")
            if not loop:
                return
            time.sleep(max(1.0, interval))
