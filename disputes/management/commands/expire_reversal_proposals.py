"""`manage.py expire_reversal_proposals`: pending reversal proposals past their time become
EXPIRED and free their amount. The staff pages and every new proposal sweep too; run this from
cron so an unattended queue does not hold amounts reserved."""

from django.core.management.base import BaseCommand

from disputes.services import proposals_expire


class Command(BaseCommand):
    help = "Expire reversal proposals nobody approved in time (AEGIS_REVERSAL_PROPOSAL_HOURS)."

    def handle(self, **options):
        total = 0
        while expired := proposals_expire():
            total += expired
        self.stdout.write(f"expired {total} proposal(s)")
