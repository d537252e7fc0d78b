import json

from django.core.management.base import BaseCommand, CommandError

from transfers.rollups import rollups_read, rollups_rebuild, rollups_recount


class Command(BaseCommand):
    help = (
        "Recompute the statistics rollups from the transactions (offline: stop the dispatcher and "
        "transfers first; see docs/statistics.md). --check only compares them with a recount."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="compare the rollups with a recount; change nothing")

    def handle(self, *args, check=False, **options):
        if check:
            held, recount = rollups_read(), rollups_recount()
            if held != recount:
                self.stdout.write("rollups: held " + json.dumps(held, sort_keys=True))
                self.stdout.write("rollups: recount " + json.dumps(recount, sort_keys=True))
                raise CommandError("rollups differ from a recount; run `manage.py rollups_rebuild` offline")
            self.stdout.write(f"rollups: OK ({len(held['daily'])} days)")
            return
        result = rollups_rebuild()
        by_status = result["byStatus"]
        self.stdout.write(
            f"rollups: rebuilt: {by_status['COMPLETED']} completed, {by_status['FAILED']} failed, "
            f"{len(result['daily'])} days; {result['eventsMarked']} undelivered events marked as counted"
        )
