import sys
import time

from django.core.management.base import BaseCommand

from ledger.reconcile import ledger_reconcile


class Command(BaseCommand):
    help = (
        "Check every ledger invariant; exit 1 on any violation. --incremental verifies only what was "
        "posted since the last clean run's checkpoints. A clean run records new checkpoints."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="continue each account's chain from its last verified checkpoint (the first run is a full one)",
        )
        parser.add_argument(
            "--progress",
            action="store_true",
            default=True,
            help="print a progress line to stderr on long runs (default)",
        )
        parser.add_argument("--no-progress", action="store_false", dest="progress")
        parser.add_argument(
            "--progress-every", type=int, default=100_000, help="entries between progress lines (default 100,000)"
        )
        parser.add_argument(
            "--progress-seconds", type=float, default=5.0, help="seconds between progress lines (default 5)"
        )
        parser.add_argument(
            "--no-checkpoint", action="store_false", dest="checkpoint", help="do not record checkpoints"
        )

    def handle(self, *args, **options):
        progress = _ProgressLine(self.stderr, options["progress_every"], options["progress_seconds"])
        report = ledger_reconcile(
            incremental=options["incremental"],
            record_checkpoints=options["checkpoint"],
            progress=progress if options["progress"] else None,
        )
        self.stdout.write(report.summary())
        if not report.ok:
            sys.exit(1)


class _ProgressLine:
    """Throttles the reconcile's progress callback: one line per `every` items or `seconds`,
    so a small run stays quiet."""

    def __init__(self, stream, every: int, seconds: float):
        self.stream, self.every, self.seconds = stream, max(1, every), seconds
        self.phase, self.last_done, self.last_at = "", 0, time.monotonic()

    def __call__(self, phase: str, done: int, total: int | None, elapsed: float) -> None:
        now = time.monotonic()
        if phase != self.phase:  # each phase counts from zero
            self.phase, self.last_done = phase, 0
        if done - self.last_done < self.every and now - self.last_at < self.seconds:
            return
        self.last_done, self.last_at = done, now
        if total:
            line = f"reconcile: {done:,} / {total:,} {phase} ({100 * done // total}%), {elapsed:.1f} s"
        else:
            line = f"reconcile: {done:,} {phase} checked, {elapsed:.1f} s"
        self.stream.write(line)
