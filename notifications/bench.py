"""`make bench-outbox`: outbox delivery lag (event created_at -> delivered_at) under steady load.

Starts its own embedded server (on disk, --sync-on-commit), funds accounts, starts the dispatcher
as a separate OS process (`manage.py dispatch_outbox`, its default settings), then runs C client
processes that together send R transfers per second for D seconds. When the backlog has drained
it prints the lag's p50/p99/max over every event created during the load (target: p99 < 1 s).

    python -m notifications.bench [--rate 20] [--clients 4] [--seconds 15] [--accounts 20]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
import uuid

from loadtest import setup


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notifications.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20.0, help="transfers per second, all clients together")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return setup.run_child(worker, args.worker)

    with setup.embedded_django(
        tmp_prefix="aegis-bench-outbox-", db_name="bench_outbox", env={"AEGIS_LOG_LEVEL": "WARNING"}
    ) as harness:
        from aegis.mongo import collection
        from transfers.models import OutboxEvent

        people = setup.funded_users(count=args.accounts, prefix="bench", funder=harness.system_user)
        accounts = [p["account"] for p in people]
        dispatcher = subprocess.Popen(
            [sys.executable, "manage.py", "dispatch_outbox"], cwd=setup.ROOT, env=harness.env, stdout=subprocess.DEVNULL
        )
        try:
            while collection(OutboxEvent).count_documents({"status": "PENDING"}):  # warm: funding events
                time.sleep(0.2)
            print(
                f"bench-outbox: {args.rate:g} transfers/s from {args.clients} client processes for "
                f"{args.seconds:g}s over {args.accounts} accounts; dispatcher in its own process; "
                f"embedded server on disk with --sync-on-commit; {os.cpu_count()} cores",
                flush=True,
            )

            start_at = time.time() + 3.0
            from datetime import UTC, datetime

            window_start = datetime.fromtimestamp(start_at, UTC)
            clients = [
                setup.start_child(
                    "notifications.bench",
                    "--worker",
                    {
                        "seed": i,
                        "accounts": accounts,
                        "rate": args.rate / args.clients,
                        "seconds": args.seconds,
                        "start_at": start_at,
                    },
                    env=harness.env,
                )
                for i in range(args.clients)
            ]
            sent, errors = 0, {}
            for proc in clients:
                result = setup.child_result(proc, timeout=args.seconds + 120)
                sent += result["sent"]
                for name, n in result["errors"].items():
                    errors[name] = errors.get(name, 0) + n
            drain_deadline = time.monotonic() + 60
            while collection(OutboxEvent).count_documents({"status": "PENDING"}) and time.monotonic() < drain_deadline:
                time.sleep(0.1)

            rows = list(
                collection(OutboxEvent).find(
                    {"created_at": {"$gte": window_start}}, {"created_at": 1, "delivered_at": 1, "status": 1}
                )
            )
            lags = [(r["delivered_at"] - r["created_at"]).total_seconds() for r in rows if r.get("delivered_at")]
            undelivered = len(rows) - len(lags)
            p50, p99 = setup.percentile(lags, 0.50), setup.percentile(lags, 0.99)
            print(
                f"  transfers sent {sent} ({sent / args.seconds:.1f}/s), errors {errors or 0}; "
                f"events {len(rows)}, undelivered {undelivered}"
            )
            print(f"  delivery lag: p50 {p50 * 1000:.0f} ms  p99 {p99 * 1000:.0f} ms  max {max(lags) * 1000:.0f} ms")
            met = p99 < 1.0 and undelivered == 0
            print(f"  target p99 < 1 s: {'met' if met else 'NOT met'}")
            return 0 if met else 1
        finally:
            dispatcher.send_signal(signal.SIGTERM)
            dispatcher.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
