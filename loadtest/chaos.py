"""`make chaos`: load, a SIGKILL at a random moment, recovery, and a ledger that still adds up.

Each round: client processes drive POST /api/transactions (gunicorn, several workers, embedded
server on disk with --sync-on-commit); at a random moment one victim gets SIGKILL — a random
web worker, or the database server itself, which is then restarted on the same data; clients
retry every request that was not answered definitively with the SAME idempotency key (503,
409 in flight, connection errors) until answered. Then the round checks:
- `reconcile` is clean;
- every acknowledged transfer (200/201) exists exactly once, COMPLETED, with its two entries;
- no transfer is left PROCESSING after the recovery window (the sweeper runs with a short lease);
- no client saw a 5xx it could not recover from by retrying.
Prints a table row per round and a verdict; exits 1 on any violation.

    python -m loadtest.chaos [--rounds 10] [--clients 4] [--workers 3] [--seconds 6]
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid

from loadtest import setup

# A web worker killed with its transaction open pins what it wrote until the server's 60 s
# transaction lifetime ends; the window covers that plus the lease and a sweep.
RECOVERY_WINDOW_SECONDS = 110
RETRY_DEADLINE_SECONDS = 150


def client(spec: dict) -> dict:
    """Send transfers until told to stop; retry unanswered ones with the same key until answered."""
    rng = random.Random(spec["seed"])
    port = spec["port"]
    conn = None
    acked, refused, gave_up, transient = [], 0, [], 0

    def post(body: str, token: str) -> int:
        nonlocal conn
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request(
                "POST",
                "/api/transactions",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {token}",
                    "X-Forwarded-Proto": "https",
                },
            )
            response = conn.getresponse()
            payload = response.read()
            if response.status in (200, 201):
                post.last = json.loads(payload)["transaction"]["_id"]
            return response.status
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            conn = None
            return 599

    end = time.monotonic() + spec["seconds"]
    while time.monotonic() < end:
        sender = rng.choice(spec["senders"])
        receiver = rng.choice([a for a in spec["receivers"] if a != sender["account"]])
        key = uuid.uuid4().hex
        amount = rng.randint(1, 300)
        body = json.dumps(
            {
                "fromAccount": sender["account"],
                "toAccount": receiver,
                "amount": f"{amount / 100:.2f}",
                "idempotencyKey": key,
            }
        )
        deadline = time.monotonic() + RETRY_DEADLINE_SECONDS
        while True:
            status = post(body, sender["token"])
            if status in (200, 201):
                acked.append({"key": key, "id": post.last, "amount": amount, "from": sender["account"]})
                break
            if status == 422 or status == 400:
                refused += 1
                break
            transient += 1  # 409 in flight, 503 not confirmed, 5xx or a dropped connection
            if time.monotonic() > deadline:
                gave_up.append({"key": key, "status": status})
                break
            time.sleep(0.2 + rng.random() * 0.3)
    return {"acked": acked, "refused": refused, "gave_up": gave_up, "transient": transient}


def main(argv: list[str] | None = None) -> int:
    numbers = {"rounds": 10, "clients": 4, "workers": 3, "accounts": 20, "seconds": 6.0}
    parser = setup.tool_parser("python -m loadtest.chaos", __doc__, numbers, child_flag="--client")
    parser.add_argument("--victims", default="worker,db", help="comma-separated: worker, db")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.client:
        return setup.run_child(client, args.client)

    from aegis import embedded

    rng = random.Random(args.seed)
    victims = args.victims.split(",")
    chaos_env = {**setup.gunicorn_env(), "AEGIS_LOG_LEVEL": "ERROR", "AEGIS_TRANSFER_LEASE_SECONDS": "5"}
    with setup.embedded_django(tmp_prefix="aegis-chaos-", db_name="chaos", env=chaos_env) as harness:
        from django.core.management import call_command

        from aegis.mongo import collection
        from ledger.models import LedgerEntry
        from ledger.reconcile import ledger_reconcile
        from transfers.models import Transaction

        env = harness.env
        port = embedded.free_port()
        call_command("collectstatic", interactive=False, verbosity=0)
        people = setup.funded_users(count=args.accounts, prefix="chaos", funder=harness.system_user)
        gunicorn = sweeper = None
        try:
            gunicorn = setup.start_gunicorn(port=port, workers=args.workers, env=env, log_level="critical")
            sweeper = subprocess.Popen(
                [sys.executable, "manage.py", "recover_transfers", "--loop", "--interval", "1"],
                cwd=setup.ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            setup.wait_http(port, gunicorn)
            accounts = [p["account"] for p in people]
            print(
                f"chaos: {args.rounds} rounds, {args.clients} clients, gunicorn x{args.workers}, "
                f"{args.seconds:g}s of load per round, victims {victims}"
            )
            print(
                f"{'round':>5}  {'victim':7} {'kill at':>7}  {'acked':>5}  {'retried':>7}  {'gave up':>7}  "
                f"{'recovered in':>12}  verdict"
            )
            all_ok = True
            all_acked: list[dict] = []
            for round_no in range(1, args.rounds + 1):
                victim = rng.choice(victims)
                kill_at = rng.uniform(1.0, max(1.5, args.seconds - 1.5))
                share = max(1, len(people) // args.clients)
                procs = [
                    setup.start_child(
                        "loadtest.chaos",
                        "--client",
                        {
                            "port": port,
                            "seed": round_no * 100 + i,
                            "seconds": args.seconds,
                            "senders": people[i * share : (i + 1) * share] or people,
                            "receivers": accounts,
                        },
                        env=env,
                    )
                    for i in range(args.clients)
                ]
                time.sleep(kill_at)
                if victim == "worker":
                    children = subprocess.run(
                        ["pgrep", "-P", str(gunicorn.pid)], capture_output=True, text=True
                    ).stdout.split()
                    if children:
                        os.kill(int(rng.choice(children)), signal.SIGKILL)
                else:
                    os.kill(harness.server.pid, signal.SIGKILL)
                    harness.server.process.wait(timeout=10)
                    time.sleep(0.5)
                    harness.restart_server()
                results = [setup.child_result(p, timeout=RETRY_DEADLINE_SECONDS + 60) for p in procs]
                acked = [a for r in results for a in r["acked"]]
                gave_up = [g for r in results for g in r["gave_up"]]
                all_acked += acked
                started = time.monotonic()
                while collection(Transaction).count_documents({"status": "PROCESSING"}):
                    if time.monotonic() - started > RECOVERY_WINDOW_SECONDS:
                        break
                    time.sleep(1)
                recovered_in = time.monotonic() - started
                violations = []
                stuck = collection(Transaction).count_documents({"status": "PROCESSING"})
                if stuck:
                    violations.append(f"{stuck} PROCESSING after {RECOVERY_WINDOW_SECONDS}s")
                if gave_up:
                    violations.append(f"{len(gave_up)} requests never answered: {gave_up[:3]}")
                report = ledger_reconcile()
                violations += report.violations[:5]
                for a in acked:
                    txn = collection(Transaction).find_one({"_id": _oid(a["id"])})
                    entries = collection(LedgerEntry).count_documents({"transaction_id": _oid(a["id"])})
                    once = txn is not None and txn["status"] == "COMPLETED" and txn["idempotency_key"] == a["key"]
                    if not once or entries != 2:
                        violations.append(f"acknowledged transfer {a['id']} is not exactly once")
                ids = [a["id"] for a in all_acked]
                if len(ids) != len(set(ids)):
                    violations.append("one transaction acknowledged for two different requests")
                all_ok &= not violations
                print(
                    f"{round_no:>5}  {victim:7} {kill_at:6.1f}s  {len(acked):>5}  "
                    f"{sum(r['transient'] for r in results):>7}  {len(gave_up):>7}  {recovered_in:11.1f}s  "
                    f"{'OK' if not violations else 'VIOLATION: ' + '; '.join(violations)}",
                    flush=True,
                )
            completed = collection(Transaction).count_documents({"status": "COMPLETED", "kind": "TRANSFER"})
            if completed != len(all_acked):
                all_ok = False
                print(f"VIOLATION: {completed} COMPLETED transfers but {len(all_acked)} acknowledged")
            print(
                f"chaos verdict: {'PASS' if all_ok else 'FAIL'} — {args.rounds} rounds, "
                f"{len(all_acked)} acknowledged transfers, each exactly once; reconcile "
                f"{'clean' if ledger_reconcile().ok else 'VIOLATED'}"
            )
            return 0 if all_ok else 1
        finally:
            for proc in (gunicorn, sweeper):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()


def _oid(value: str):
    from bson import ObjectId

    return ObjectId(value)


if __name__ == "__main__":
    sys.exit(main())
