import sys

from django.core.management.base import BaseCommand

from ledger.reconcile import ledger_reconcile


class Command(BaseCommand):
    help = "Check every ledger invariant over the whole database; exit 1 on any violation."

    def handle(self, *args, **options):
        report = ledger_reconcile()
        self.stdout.write(report.summary())
        if not report.ok:
            sys.exit(1)
