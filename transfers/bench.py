"""`make bench-engine`: the transfer engine against a bare pymongo transaction, same run.

Starts its own embedded server (on disk, --sync-on-commit, as in production-like use), funds
accounts, then runs C client processes for D seconds per phase, alternating the two phases:
- bare:   the same writes with pymongo's `with_transaction` and no engine logic (the claim
          insert, then: settle, audit, outbox, guarded debit, credit, two ledger entries);
- engine: `transfers.services.transfer_create` (validation, ownership, idempotent claim,
          conflict retries, failure recording).
Prints transfers/s, p50/p99 latency and conflict retries per phase (medians over rounds), the
engine/bare ratio, and the `reconcile` verdict.

    python -m transfers.bench [--clients 8] [--accounts 50] [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- worker side ------------------------------------------------------------------------------


def worker(spec: dict) -> dict:
    _setup_django()
    from datetime import UTC, datetime

    from bson import Int64, ObjectId
    from pymongo import ReturnDocument

    from accounts.models import Account
    from aegis import mongo
    from aegis.mongo import TXN_OPTIONS, collection, get_client
    from ledger.models import AuditLog, LedgerEntry
    from transfers.models import OutboxEvent, Transaction
    from transfers.services import transfer_create

    rng = random.Random(spec["seed"])
    ids = spec["accounts"]
    owners = {a.pk: a.user for a in Account.objects.select_related("user").filter(pk__in=[ObjectId(i) for i in ids])}
    oids = [ObjectId(i) for i in ids]
    client = get_client()

    def bare_once(sender: ObjectId, receiver: ObjectId, amount: int) -> None:
        now = datetime.now(UTC)
        txn = {"_id": ObjectId(), "from_account_id": sender, "to_account_id": receiver, "amount": Int64(amount),
               "status": "PROCESSING", "idempotency_key": uuid.uuid4().hex, "retry_count": 0, "created_at": now}
        collection(Transaction).insert_one(txn)

        def body(session):
            collection(Transaction).update_one({"_id": txn["_id"]}, {"$set": {"status": "COMPLETED"}}, session=session)
            collection(AuditLog).insert_one({"action": "TRANSFER_SUCCESS", "transaction_id": str(txn["_id"]),
                                             "created_at": now}, session=session)
            collection(OutboxEvent).insert_one({"event_type": "transaction.completed", "payload": {},
                                                "created_at": now}, session=session)
            s = collection(Account).find_one_and_update(
                {"_id": sender, "balance": {"$gte": amount}}, {"$inc": {"balance": -amount, "ledger_seq": 1}},
                return_document=ReturnDocument.AFTER, session=session)
            r = collection(Account).find_one_and_update(
                {"_id": receiver}, {"$inc": {"balance": amount, "ledger_seq": 1}},
                return_document=ReturnDocument.AFTER, session=session)
            collection(LedgerEntry).insert_many([
                {"account_id": sender, "transaction_id": txn["_id"], "type": "DEBIT", "amount": Int64(amount),
                 "balance_after": Int64(s["balance"]), "seq": Int64(s["ledger_seq"]), "created_at": now},
                {"account_id": receiver, "transaction_id": txn["_id"], "type": "CREDIT", "amount": Int64(amount),
                 "balance_after": Int64(r["balance"]), "seq": Int64(r["ledger_seq"]), "created_at": now},
            ], session=session)

        with client.start_session() as session:
            session.with_transaction(body, **TXN_OPTIONS)

    latencies, errors = [], {}
    delay = spec["start_at"] - time.time()
    if delay > 0:
        time.sleep(delay)
    end = time.monotonic() + spec["seconds"]
    while time.monotonic() < end:
        sender, receiver = rng.sample(oids, 2)
        amount = rng.randint(1, 100)
        started = time.perf_counter()
        try:
            if spec["mode"] == "bare":
                bare_once(sender, receiver, amount)
            else:
                transfer_create(actor=owners[sender], from_account_id=str(sender), to_account_id=str(receiver),
                                amount_paise=amount, idempotency_key=uuid.uuid4().hex)
        except Exception as error:  # counted and reported, never hidden
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            continue
        latencies.append(time.perf_counter() - started)
    return {"latencies": latencies, "errors": errors, "conflicts": mongo.conflict_retries}


# --- driver side ------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_phase(mode: str, *, clients: int, accounts: list[str], seconds: float, env: dict) -> dict:
    start_at = time.time() + 3.0  # a start barrier: every client begins together after Django setup
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "transfers.bench", "--worker",
             json.dumps({"mode": mode, "seed": i, "accounts": accounts, "seconds": seconds, "start_at": start_at})],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        )
        for i in range(clients)
    ]
    latencies, errors, conflicts = [], {}, 0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        result = json.loads(out.strip().splitlines()[-1])
        latencies += result["latencies"]
        conflicts += result["conflicts"]
        for name, n in result["errors"].items():
            errors[name] = errors.get(name, 0) + n
    return {
        "rate": len(latencies) / seconds,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "count": len(latencies),
        "errors": errors,
        "conflicts": conflicts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transfers.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    from aegis import embedded

    with tempfile.TemporaryDirectory(prefix="aegis-bench-") as tmp:
        server = embedded.start(storage=str(Path(tmp) / "db"))
        env = dict(os.environ, MONGODB_URI=server.uri, AEGIS_DB_NAME="bench")
        os.environ.update(MONGODB_URI=server.uri, AEGIS_DB_NAME="bench")
        try:
            _setup_django()
            from django.core.management import call_command

            from accounts.services import system_bootstrap
            from ledger.reconcile import ledger_reconcile
            from tests.factories import make_account
            from transfers.services import system_fund

            call_command("migrate", verbosity=0)
            bank = system_bootstrap(credentials_path=Path(tmp) / "credentials.json")
            accounts = []
            for i in range(args.accounts):
                account = make_account()
                system_fund(actor=bank.system_user, to_account_id=str(account.pk), amount_paise=1_000_000,
                            idempotency_key=f"bench-fund-{i}")
                accounts.append(str(account.pk))
            print(f"bench-engine: {args.clients} clients, {args.accounts} accounts, {args.seconds:g}s per phase, "
                  f"{args.rounds} rounds, embedded server on disk with --sync-on-commit, {os.cpu_count()} cores")
            phases = {"bare": [], "engine": []}
            for round_no in range(1, args.rounds + 1):
                for mode in ("bare", "engine"):
                    result = run_phase(mode, clients=args.clients, accounts=accounts, seconds=args.seconds, env=env)
                    phases[mode].append(result)
                    print(f"  round {round_no} {mode:6s}: {result['rate']:7.1f} transfers/s  "
                          f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
                          f"conflict retries {result['conflicts']:5d}  errors {result['errors'] or 0}", flush=True)
            med = {m: {k: statistics.median(r[k] for r in rs) for k in ("rate", "p50_ms", "p99_ms")}
                   for m, rs in phases.items()}
            ratio = med["engine"]["rate"] / med["bare"]["rate"]
            for mode in ("bare", "engine"):
                print(f"median {mode:6s}: {med[mode]['rate']:7.1f} transfers/s  p50 {med[mode]['p50_ms']:6.1f} ms  "
                      f"p99 {med[mode]['p99_ms']:7.1f} ms")
            print(f"engine / bare = {ratio:.2f}  (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})")
            report = ledger_reconcile()
            print(report.summary().splitlines()[-1])
            return 0 if report.ok else 1
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
