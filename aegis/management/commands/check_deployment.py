"""`manage.py check_deployment`: what the connected MongoDB offers the engine (run by scripts/run.sh).

Prints one line per check; exits 0 (warnings are printed, not fatal) unless --strict, where a
warning exits 1 (for a deploy pipeline that must refuse a wrong deployment).
"""

from django.core.management.base import BaseCommand, CommandError

from aegis.deployment import deployment_findings
from aegis.mongo import get_client


class Command(BaseCommand):
    help = "Check that the connected MongoDB deployment offers what the transfer engine needs."

    def add_arguments(self, parser):
        parser.add_argument("--strict", action="store_true", help="exit 1 when any check warns")

    def handle(self, *args, strict=False, **options):
        findings = deployment_findings(get_client())
        for finding in findings:
            line = f"{'ok' if finding.level == 'ok' else 'WARNING'}: {finding.text}"
            self.stdout.write(line) if finding.level == "ok" else self.stderr.write(line)
        if strict and any(f.level != "ok" for f in findings):
            raise CommandError("the deployment lacks what the engine needs (see the warnings above)")
