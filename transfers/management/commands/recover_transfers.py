import time

from django.core.management.base import BaseCommand

from transfers.services import transfers_recover_stale


class Command(BaseCommand):
    help = "Settle transfers left PROCESSING by a dead worker (after their lease). --loop keeps sweeping."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="sweep forever")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between sweeps")

    def handle(self, *args, loop=False, interval=5.0, **options):
        while True:
            counts = transfers_recover_stale()
            if counts["found"] or not loop:
                self.stdout.write(
                    f"recover: {counts['found']} stale, {counts['recovered']} settled, {counts['skipped']} deferred"
                )
            if not loop:
                return
            time.sleep(interval)
