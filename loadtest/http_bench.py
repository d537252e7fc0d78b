"""`make bench`: the JSON API over HTTP under gunicorn, against the engine alone, same run.

Starts an embedded server (on disk, --sync-on-commit) and the app under gunicorn with several
workers, creates users with funded accounts, then drives POST /api/transactions with C client
processes (keep-alive HTTP/1.1, Bearer tokens) for D seconds in two scenarios:
- uniform: every client sends from its own accounts to random accounts among many;
- hot:     half the clients send from many accounts to ONE receiver, the other half from ONE
           sender to many receivers.
Then it measures the engine alone (transfers.bench, service layer, no HTTP) with the same
client count, and prints transfers/s, p50/p95/p99, errors by status, HTTP/engine, and the
`reconcile` verdict. Exits 1 if reconcile finds a violation or a request got a 5xx.

    python -m loadtest.http_bench [--clients 8] [--workers 4] [--accounts 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# --- client side ------------------------------------------------------------------------------


def client(spec: dict) -> dict:
    rng = random.Random(spec["seed"])
    conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=60)
    latencies, statuses = [], Counter()
    delay = spec["start_at"] - time.time()
    if delay > 0:
        time.sleep(delay)
    end = time.monotonic() + spec["seconds"]
    while time.monotonic() < end:
        sender = rng.choice(spec["senders"])
        receiver = rng.choice([r for r in spec["receivers"] if r != sender["account"]] or spec["receivers"])
        body = json.dumps({"fromAccount": sender["account"], "toAccount": receiver,
                           "amount": f"{rng.randint(1, 500) / 100:.2f}", "idempotencyKey": uuid.uuid4().hex})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {sender['token']}",
                   "X-Forwarded-Proto": "https"}
        started = time.perf_counter()
        for _ in range(3):  # a 503 "not confirmed" is retried with the same key, as clients must
            try:
                conn.request("POST", "/api/transactions", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=60)
                status = 599  # connection error
            if status != 503:
                break
        statuses[status] += 1
        if status in (200, 201):
            latencies.append(time.perf_counter() - started)
    return {"latencies": latencies, "statuses": dict(statuses)}


# --- driver side ------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def _run_clients(specs: list[dict], seconds: float, env: dict) -> dict:
    start_at = time.time() + 2.0
    procs = [
        subprocess.Popen([sys.executable, "-m", "loadtest.http_bench", "--client",
                          json.dumps({**spec, "seed": i, "seconds": seconds, "start_at": start_at})],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for i, spec in enumerate(specs)
    ]
    latencies, statuses = [], Counter()
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        result = json.loads(out.strip().splitlines()[-1])
        latencies += result["latencies"]
        statuses.update({int(k): v for k, v in result["statuses"].items()})
    return {"rate": len(latencies) / seconds, "p50": _pct(latencies, 0.5), "p95": _pct(latencies, 0.95),
            "p99": _pct(latencies, 0.99), "statuses": dict(sorted(statuses.items()))}


def _wait_http(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: gunicorn exited with code {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers={"X-Forwarded-Proto": "https"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("bench: the app did not answer /healthz in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.http_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        print(json.dumps(client(json.loads(args.client))))
        return 0

    from aegis import embedded

    with tempfile.TemporaryDirectory(prefix="aegis-bench-http-") as tmp:
        server = embedded.start(storage=str(Path(tmp) / "db"))
        port = embedded.free_port()
        limits = "100000000/15m"
        env = dict(
            os.environ, MONGODB_URI=server.uri, AEGIS_DB_NAME="bench_http", DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50), JWT_SECRET=secrets.token_urlsafe(40),
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            # The load clients stand in for the TLS-terminating proxy in front of gunicorn.
            AEGIS_TRUSTED_PROXIES="127.0.0.1", AEGIS_RATELIMIT_GLOBAL=limits,
            AEGIS_RATELIMIT_STRICT=limits, AEGIS_LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="aegis.settings",
        )
        os.environ.update(env)
        gunicorn = None
        try:
            sys.path.insert(0, str(ROOT))
            import django

            django.setup()
            from django.core.management import call_command

            from accounts.auth import token_issue
            from accounts.models import Account, User
            from accounts.services import system_bootstrap
            from ledger.reconcile import ledger_reconcile
            from transfers.bench import run_phase
            from transfers.services import system_fund

            call_command("migrate", verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)  # as a deployment would
            bank = system_bootstrap(credentials_path=Path(tmp) / "credentials.json")
            people = []
            for i in range(args.accounts):
                user = User(email=f"bench{i}@example.com")
                user.set_unusable_password()  # tokens are issued directly: no bcrypt cost in setup
                user.save()
                account = Account.objects.create(user=user)
                system_fund(actor=bank.system_user, to_account_id=str(account.pk), amount_paise=1_000_000,
                            idempotency_key=f"bench-fund-{i}")
                people.append({"account": str(account.pk), "token": token_issue(user=user)})
            gunicorn = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "aegis.wsgi", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                 "--log-level", "warning", "--timeout", "60", "--keep-alive", "30"],
                cwd=ROOT, env=env,
            )
            _wait_http(port, gunicorn)
            print(f"bench: {args.clients} clients, gunicorn x{args.workers}, {args.accounts} accounts, "
                  f"{args.seconds:g}s per scenario, {os.cpu_count()} cores, embedded server on disk "
                  f"(--sync-on-commit)", flush=True)

            accounts = [p["account"] for p in people]
            share = max(1, len(people) // args.clients)
            uniform = [{"port": port, "senders": people[i * share:(i + 1) * share] or people, "receivers": accounts}
                       for i in range(args.clients)]
            hot_receiver, hot_sender = people[0], people[1]
            half = max(1, args.clients // 2)
            hot = [{"port": port, "senders": people[2 + i * share:2 + (i + 1) * share] or people[2:],
                    "receivers": [hot_receiver["account"]]} for i in range(half)]
            hot += [{"port": port, "senders": [hot_sender], "receivers": accounts[2:]}
                    for _ in range(args.clients - half)]

            results = {}
            for name, specs in (("uniform", uniform), ("hot", hot)):
                print(f"  running {name} for {args.seconds:g}s ...", flush=True)
                results[name] = _run_clients(specs, args.seconds, env)
                r = results[name]
                print(f"  {name:8s}: {r['rate']:7.1f} transfers/s  p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  "
                      f"p99 {r['p99']:7.1f} ms  statuses {r['statuses']}", flush=True)
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
            gunicorn = None
            print(f"  running engine (service layer, no HTTP) for {args.seconds:g}s ...", flush=True)
            engine = run_phase("engine", clients=args.clients, accounts=accounts[2:], seconds=args.seconds, env=env)
            print(f"  engine  : {engine['rate']:7.1f} transfers/s  p50 {engine['p50_ms']:6.1f} ms  "
                  f"p99 {engine['p99_ms']:7.1f} ms  errors {engine['errors'] or 0}")

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
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
