import time

from django.core.management.base import BaseCommand

from aegis.mongo import get_client
from aegis.txn_sessions import sessions_of_dead_processes_end
from transfers.services import transfers_recover_stale


class Command(BaseCommand):
    help = (
        "End the open transactions of dead processes of this host, then settle transfers left PROCESSING "
        "by a dead worker (after their lease). --loop keeps sweeping."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="sweep forever")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between sweeps")

    def handle(self, *args, loop=False, interval=5.0, **options):
        while True:
            # First free what dead processes of this host still hold (their open transactions),
            # so the claims recovered next and the accounts they touched are free at once.
            ended = sessions_of_dead_processes_end(get_client())
            if ended:
                self.stdout.write(f"recover: ended the open transactions of {ended} dead process(es)")
            counts = transfers_recover_stale()
            if counts["found"] or not loop:
                self.stdout.write(
                    f"recover: {counts['found']} stale, {counts['recovered']} settled, {counts['skipped']} deferred"
                )
            if not loop:
                return
            time.sleep(interval)
