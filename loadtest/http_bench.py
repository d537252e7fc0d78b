"""`make bench`: the JSON API over HTTP under gunicorn, against the engine alone, same run.

Starts an embedded server (on disk, --sync-on-commit) and the app under gunicorn with several
workers, creates users with funded accounts, then drives POST /api/transactions with C client
processes (keep-alive HTTP/1.1, Bearer tokens) for D seconds in two scenarios:
- uniform: every client sends from its own accounts to random accounts among many;
- hot:     half the clients send from many accounts to ONE receiver, the other half from ONE
           sender to many receivers.
Then it measures the engine alone (loadtest.engine_bench, service layer, no HTTP) with the same
client count, and prints transfers/s, p50/p95/p99, errors by status, HTTP/engine, and the
`reconcile` verdict. Exits 1 if reconcile finds a violation or a request got a 5xx.

    python -m loadtest.http_bench [--clients 8] [--workers 4] [--accounts 100] [--seconds 10]
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter

from loadtest import setup
from loadtest.contention import client  # the child side (python -m loadtest.http_bench --client), ₹0.01–5 here

# --- driver side ------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    return setup.percentile(values, q) * 1000


def _run_clients(specs: list[dict], seconds: float, env: dict) -> dict:
    start_at = time.time() + 2.0
    procs = [
        setup.start_child(
            "loadtest.http_bench", "--client", {**spec, "seed": i, "seconds": seconds, "start_at": start_at}, env=env
        )
        for i, spec in enumerate(specs)
    ]
    latencies, statuses = [], Counter()
    for proc in procs:
        result = setup.child_result(proc, timeout=seconds + 120)
        latencies += result["latencies"]
        statuses.update({int(k): v for k, v in result["statuses"].items()})
    return {
        "rate": len(latencies) / seconds,
        "p50": _pct(latencies, 0.5),
        "p95": _pct(latencies, 0.95),
        "p99": _pct(latencies, 0.99),
        "statuses": dict(sorted(statuses.items())),
    }


def main(argv: list[str] | None = None) -> int:
    numbers = {"clients": 8, "workers": 4, "accounts": 100, "seconds": 10.0}
    args = setup.tool_parser("python -m loadtest.http_bench", __doc__, numbers, child_flag="--client").parse_args(argv)
    if args.client:
        return setup.run_child(client, args.client)

    from aegis import embedded

    with setup.embedded_django(
        tmp_prefix="aegis-bench-http-", db_name="bench_http", env={**setup.gunicorn_env(), "AEGIS_LOG_LEVEL": "WARNING"}
    ) as harness:
        from django.core.management import call_command

        from ledger.reconcile import ledger_reconcile
        from loadtest.engine_bench import run_phase

        env = harness.env
        port = embedded.free_port()
        call_command("collectstatic", interactive=False, verbosity=0)  # as a deployment would
        people = setup.funded_users(count=args.accounts, prefix="bench", funder=harness.system_user)
        gunicorn = None
        try:
            gunicorn = setup.start_gunicorn(
                port=port, workers=args.workers, env=env, log_level="warning", extra=("--keep-alive", "30")
            )
            setup.wait_http(port, gunicorn)
            print(
                f"bench: {args.clients} clients, gunicorn x{args.workers}, {args.accounts} accounts, "
                f"{args.seconds:g}s per scenario, {os.cpu_count()} cores, embedded server on disk "
                f"(--sync-on-commit)",
                flush=True,
            )

            accounts = [p["account"] for p in people]
            share = max(1, len(people) // args.clients)
            uniform = [
                {
                    "port": port,
                    "senders": people[i * share : (i + 1) * share] or people,
                    "receivers": accounts,
                    "amount_paise": (1, 500),
                }
                for i in range(args.clients)
            ]
            hot_receiver, hot_sender = people[0], people[1]
            half = max(1, args.clients // 2)
            hot = [
                {
                    "port": port,
                    "senders": people[2 + i * share : 2 + (i + 1) * share] or people[2:],
                    "receivers": [hot_receiver["account"]],
                    "amount_paise": (1, 500),
                }
                for i in range(half)
            ]
            hot += [
                {"port": port, "senders": [hot_sender], "receivers": accounts[2:], "amount_paise": (1, 500)}
                for _ in range(args.clients - half)
            ]

            results = {}
            for name, specs in (("uniform", uniform), ("hot", hot)):
                print(f"  running {name} for {args.seconds:g}s ...", flush=True)
                results[name] = _run_clients(specs, args.seconds, env)
                r = results[name]
                print(
                    f"  {name:8s}: {r['rate']:7.1f} transfers/s  p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  "
                    f"p99 {r['p99']:7.1f} ms  statuses {r['statuses']}",
                    flush=True,
                )
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
            gunicorn = None
            print(f"  running engine (service layer, no HTTP) for {args.seconds:g}s ...", flush=True)
            engine = run_phase("engine", clients=args.clients, accounts=accounts[2:], seconds=args.seconds, env=env)
            print(
                f"  engine  : {engine['rate']:7.1f} transfers/s  p50 {engine['p50_ms']:6.1f} ms  "
                f"p99 {engine['p99_ms']:7.1f} ms  errors {engine['errors'] or 0}"
            )

            u, h = results["uniform"], results["hot"]
            print(f"HTTP uniform / engine = {u['rate'] / engine['rate']:.2f}   (target >= 0.70)")
            print(f"hot / uniform         = {h['rate'] / u['rate']:.2f}   (target >= 0.50)")
            print(f"uniform p99 / p50     = {u['p99'] / u['p50']:.2f}   (target <= 5)")
            failed_by_conflict = Counter()
            from aegis.mongo import collection
            from transfers.models import Transaction

            for row in collection(Transaction).find({"status": "FAILED"}, {"failure_code": 1}):
                failed_by_conflict[row["failure_code"]] += 1
            print(f"FAILED transfers by reason: {dict(failed_by_conflict) or 'none'}")
            server_errors = sum(n for r in results.values() for s, n in r["statuses"].items() if s >= 500 and s != 503)
            report = ledger_reconcile()
            print(report.summary().splitlines()[-1])
            return 0 if report.ok and not server_errors else 1
        finally:
            if gunicorn is not None:
                gunicorn.kill()


if __name__ == "__main__":
    sys.exit(main())
