"""`make bench-outbox`: outbox delivery lag (event created_at -> delivered_at) under steady load.

Starts its own embedded server (on disk, --sync-on-commit), funds accounts, starts N dispatchers
as separate OS processes (`manage.py dispatch_outbox --batch B`), then for each rate runs C client
processes that together send R transfers per second for D seconds, waits for the backlog to drain
and prints the lag's p50/p99/max over the events of that phase against its target (p99 < 1 s at
20/s, p99 < 2 s at 40/s), with the rate the clients really reached. `--baseline` first measures
the same phases with one-at-a-time dispatchers (`--batch 1`, the pre-batch path): before/after.

    python -m loadtest.outbox_bench [--rates 20,40] [--dispatchers 1] [--batch 100] [--baseline]
                                  [--clients N] [--seconds 15] [--accounts 20]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import subprocess
import sys
import time
import uuid

from loadtest import setup

TARGETS = {20.0: 1.0, 40.0: 2.0}  # transfers/s -> p99 delivery lag target, seconds


def worker(spec: dict) -> dict:
    """Send transfers at a fixed rate (open loop: the schedule does not wait for slow answers)."""
    setup.django_setup()
    from bson import ObjectId

    from accounts.models import Account
    from transfers.services import transfer_create

    rng = random.Random(spec["seed"])
    oids = [ObjectId(i) for i in spec["accounts"]]
    owners = {a.pk: a.user for a in Account.objects.select_related("user").filter(pk__in=oids)}
    period = 1.0 / spec["rate"]
    delay = spec["start_at"] - time.time()
    if delay > 0:
        time.sleep(delay)
    started = time.monotonic()
    sent, errors = 0, {}
    while time.monotonic() - started < spec["seconds"]:
        due = started + sent * period
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        sender, receiver = rng.sample(oids, 2)
        try:
            transfer_create(
                actor=owners[sender],
                from_account_id=str(sender),
                to_account_id=str(receiver),
                amount_paise=rng.randint(1, 100),
                idempotency_key=uuid.uuid4().hex,
            )
        except Exception as error:  # counted and reported, never hidden
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
        sent += 1
    return {"sent": sent, "errors": errors}


def _pending() -> int:
    from aegis.mongo import collection
    from events.models import OutboxEvent

    return collection(OutboxEvent).count_documents({"status": "PENDING"})


def _phase(args, harness, accounts: list[str], rate: float) -> dict:
    """One load phase at `rate`; returns its figures once the backlog has drained."""
    from datetime import UTC, datetime

    from aegis.mongo import collection
    from events.models import OutboxEvent

    count = args.clients or max(4, math.ceil(rate / 5))
    start_at = time.time() + 3.0
    window_start = datetime.fromtimestamp(start_at, UTC)
    clients = [
        setup.start_child(
            "loadtest.outbox_bench",
            "--worker",
            {
                "seed": int(rate * 1000) + i,
                "accounts": accounts,
                "rate": rate / count,
                "seconds": args.seconds,
                "start_at": start_at,
            },
            env=harness.env,
        )
        for i in range(count)
    ]
    sent, errors = 0, {}
    for proc in clients:
        result = setup.child_result(proc, timeout=args.seconds + 120)
        sent += result["sent"]
        for name, n in result["errors"].items():
            errors[name] = errors.get(name, 0) + n
    drain_deadline = time.monotonic() + 60
    while _pending() and time.monotonic() < drain_deadline:
        time.sleep(0.1)
    rows = list(
        collection(OutboxEvent).find(
            {"created_at": {"$gte": window_start}},
            {"created_at": 1, "claimed_at": 1, "delivered_at": 1, "status": 1},
        )
    )
    done = [r for r in rows if r.get("delivered_at")]
    lags = [(r["delivered_at"] - r["created_at"]).total_seconds() for r in done]
    # The dispatcher's own share: from its (last) claim to the mark. The rest is the engine's
    # commit after stamping created_at, the poll interval, and the wait behind the previous batch.
    held = [(r["delivered_at"] - r["claimed_at"]).total_seconds() for r in done if r.get("claimed_at")]
    return {
        "rate": rate,
        "clients": count,
        "sent": sent,
        "errors": errors,
        "events": len(rows),
        "undelivered": len(rows) - len(lags),
        "p50": setup.percentile(lags, 0.50),
        "p99": setup.percentile(lags, 0.99),
        "max": max(lags) if lags else float("nan"),
        "held_p99": setup.percentile(held, 0.99),
    }


def _report(args, label: str, phase: dict) -> bool:
    target = TARGETS.get(phase["rate"])
    met = target is not None and phase["p99"] < target and phase["undelivered"] == 0
    print(
        f"  [{label}] {phase['rate']:g}/s: {phase['clients']} clients sent {phase['sent']} transfers "
        f"({phase['sent'] / args.seconds:.1f}/s), "
        f"errors {phase['errors'] or 0}; events {phase['events']}, undelivered {phase['undelivered']}"
    )
    verdict = f"target p99 < {target:g} s: {'met' if met else 'NOT met'}" if target else "no target at this rate"
    print(
        f"  [{label}] {phase['rate']:g}/s: delivery lag p50 {phase['p50'] * 1000:.0f} ms  "
        f"p99 {phase['p99'] * 1000:.0f} ms  max {phase['max'] * 1000:.0f} ms (claim to mark: p99 "
        f"{phase['held_p99'] * 1000:.0f} ms); {verdict}",
        flush=True,
    )
    return met or target is None


def _start_dispatchers(harness, count: int, batch: int) -> list[subprocess.Popen]:
    command = [sys.executable, "manage.py", "dispatch_outbox", "--batch", str(batch)]
    return [subprocess.Popen(command, cwd=setup.ROOT, env=harness.env, stdout=subprocess.DEVNULL) for _ in range(count)]


def _stop(dispatchers: list[subprocess.Popen]) -> None:
    for proc in dispatchers:
        proc.send_signal(signal.SIGTERM)
    for proc in dispatchers:
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.outbox_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rates", default="20,40", help="transfers per second of each phase, all clients together")
    parser.add_argument("--rate", dest="rates", help=argparse.SUPPRESS)  # the old one-phase spelling
    parser.add_argument("--dispatchers", type=int, default=1, help="dispatcher processes")
    parser.add_argument("--batch", type=int, default=0, help="events per delivery transaction (default: the setting)")
    parser.add_argument("--baseline", action="store_true", help="measure one-at-a-time dispatchers (--batch 1) first")
    parser.add_argument(
        "--clients", type=int, default=0, help="client processes per phase (default: one per 5 transfers/s, at least 4)"
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return setup.run_child(worker, args.worker)
    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error("--rates takes numbers separated by commas, e.g. 20,40")
    if not rates or min(rates) <= 0 or args.dispatchers < 1 or args.batch < 0:
        parser.error("--rates must be positive, --dispatchers at least 1, --batch 0 (the setting) or more")

    with setup.embedded_django(
        tmp_prefix="aegis-bench-outbox-", db_name="bench_outbox", env={"AEGIS_LOG_LEVEL": "WARNING"}
    ) as harness:
        from django.conf import settings

        batch = args.batch or settings.AEGIS_OUTBOX_DELIVERY_BATCH
        people = setup.funded_users(count=args.accounts, prefix="bench", funder=harness.system_user)
        accounts = [p["account"] for p in people]
        print(
            f"bench-outbox: phases at {', '.join(f'{r:g}' for r in rates)} transfers/s, each for "
            f"{args.seconds:g}s over {args.accounts} accounts; "
            f"{args.dispatchers} dispatcher process(es); embedded server on disk with --sync-on-commit; "
            f"{os.cpu_count()} cores",
            flush=True,
        )
        configs = ([("one at a time, --batch 1", 1)] if args.baseline else []) + [(f"--batch {batch}", batch)]
        all_met = True
        for label, size in configs:
            label = f"{args.dispatchers} dispatcher(s), {label}"
            dispatchers = _start_dispatchers(harness, args.dispatchers, size)
            try:
                while _pending():  # warm: the funding events (and any backlog of the previous config)
                    time.sleep(0.2)
                for rate in rates:
                    met = _report(args, label, _phase(args, harness, accounts, rate))
                    if size == batch:
                        all_met &= met
            finally:
                _stop(dispatchers)
        print(f"  targets: {'all met' if all_met else 'NOT all met'} ({batch} events per delivery transaction)")
        return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
