"""`make bench-engine`: the transfer engine against a bare pymongo transaction, same run.

Starts its own embedded server (on disk, --sync-on-commit, as in production-like use), funds
accounts, then runs C client processes for D seconds per phase, alternating the two phases:
- bare:   the same writes with pymongo's `with_transaction` and no engine logic (the claim
          insert, then: settle, audit, outbox, guarded debit, credit, two ledger entries);
- engine: `transfers.services.transfer_create` (validation, ownership, idempotent claim,
          conflict retries, failure recording).
Prints transfers/s, p50/p99 latency and conflict retries per phase (medians over rounds), the
engine/bare ratio, and the `reconcile` verdict.

    python -m loadtest.engine_bench [--clients 8] [--accounts 50] [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid

from loadtest import setup

# --- worker side ------------------------------------------------------------------------------


def worker(spec: dict) -> dict:
    setup.django_setup()
    from datetime import UTC, datetime

    from bson import Int64, ObjectId
    from pymongo import ReturnDocument

    from accounts.models import Account
    from aegis import mongo
    from aegis.mongo import TXN_OPTIONS, collection, get_client
    from events.models import OutboxEvent
    from ledger.chain import chained
    from ledger.models import AuditLog, LedgerEntry
    from transfers.models import Transaction
    from transfers.services import transfer_create

    rng = random.Random(spec["seed"])
    ids = spec["accounts"]
    owners = {a.pk: a.user for a in Account.objects.select_related("user").filter(pk__in=[ObjectId(i) for i in ids])}
    oids = [ObjectId(i) for i in ids]
    client = get_client()

    def bare_once(sender: ObjectId, receiver: ObjectId, amount: int) -> None:
        now = datetime.now(UTC)
        txn = {
            "_id": ObjectId(),
            "from_account_id": sender,
            "to_account_id": receiver,
            "amount": Int64(amount),
            "status": "PROCESSING",
            "idempotency_key": uuid.uuid4().hex,
            "retry_count": 0,
            "created_at": now,
        }
        collection(Transaction).insert_one(txn)

        def bump(query: dict, delta: int, session) -> dict:
            return collection(Account).find_one_and_update(
                query,
                # As the engine's posting: ledger_at never goes back, and stamps the entry.
                {"$inc": {"balance": delta, "ledger_seq": 1}, "$max": {"ledger_at": now}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )

        def entry(account_id: ObjectId, kind: str, after: dict) -> dict:
            # The same writes as the engine's posting: the entry chained to the account's head.
            return chained(
                {
                    "account_id": account_id,
                    "transaction_id": txn["_id"],
                    "type": kind,
                    "amount": Int64(amount),
                    "balance_after": Int64(after["balance"]),
                    "seq": Int64(after["ledger_seq"]),
                    "currency": "INR",
                    "created_at": after["ledger_at"],
                },
                after.get("ledger_head"),
            )

        def body(session):
            collection(Transaction).update_one({"_id": txn["_id"]}, {"$set": {"status": "COMPLETED"}}, session=session)
            collection(AuditLog).insert_one(
                {"action": "TRANSFER_SUCCESS", "transaction_id": str(txn["_id"]), "created_at": now}, session=session
            )
            collection(OutboxEvent).insert_one(
                {"event_type": "transaction.completed", "payload": {}, "created_at": now}, session=session
            )
            s = bump({"_id": sender, "balance": {"$gte": amount}}, -amount, session)
            r = bump({"_id": receiver}, amount, session)
            posted = [entry(sender, "DEBIT", s), entry(receiver, "CREDIT", r)]
            collection(LedgerEntry).insert_many(posted, session=session)
            for e in posted:
                collection(Account).update_one(
                    {"_id": e["account_id"]}, {"$set": {"ledger_head": e["hash"]}}, session=session
                )

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
                transfer_create(
                    actor=owners[sender],
                    from_account_id=str(sender),
                    to_account_id=str(receiver),
                    amount_paise=amount,
                    idempotency_key=uuid.uuid4().hex,
                )
        except Exception as error:  # counted and reported, never hidden
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            continue
        latencies.append(time.perf_counter() - started)
    return {"latencies": latencies, "errors": errors, "conflicts": mongo.conflict_retries}


# --- driver side ------------------------------------------------------------------------------


def run_phase(mode: str, *, clients: int, accounts: list[str], seconds: float, env: dict) -> dict:
    start_at = time.time() + 3.0  # a start barrier: every client begins together after Django setup
    procs = [
        setup.start_child(
            "loadtest.engine_bench",
            "--worker",
            {"mode": mode, "seed": i, "accounts": accounts, "seconds": seconds, "start_at": start_at},
            env=env,
        )
        for i in range(clients)
    ]
    latencies, errors, conflicts = [], {}, 0
    for proc in procs:
        result = setup.child_result(proc, timeout=seconds + 120)
        latencies += result["latencies"]
        conflicts += result["conflicts"]
        for name, n in result["errors"].items():
            errors[name] = errors.get(name, 0) + n
    return {
        "rate": len(latencies) / seconds,
        "p50_ms": setup.percentile(latencies, 0.50) * 1000,
        "p99_ms": setup.percentile(latencies, 0.99) * 1000,
        "count": len(latencies),
        "errors": errors,
        "conflicts": conflicts,
    }


def main(argv: list[str] | None = None) -> int:
    numbers = {"clients": 8, "accounts": 50, "seconds": 5.0, "rounds": 2}
    parser = setup.tool_parser("python -m loadtest.engine_bench", __doc__, numbers, child_flag="--worker")
    args = parser.parse_args(argv)
    if args.worker:
        return setup.run_child(worker, args.worker)

    with setup.embedded_django(tmp_prefix="aegis-bench-", db_name="bench") as harness:
        from ledger.reconcile import ledger_reconcile

        people = setup.funded_users(count=args.accounts, prefix="bench", funder=harness.system_user)
        accounts = [p["account"] for p in people]
        print(
            f"bench-engine: {args.clients} clients, {args.accounts} accounts, {args.seconds:g}s per phase, "
            f"{args.rounds} rounds, embedded server on disk with --sync-on-commit, {os.cpu_count()} cores"
        )
        phases = {"bare": [], "engine": []}
        for round_no in range(1, args.rounds + 1):
            for mode in ("bare", "engine"):
                result = run_phase(mode, clients=args.clients, accounts=accounts, seconds=args.seconds, env=harness.env)
                phases[mode].append(result)
                print(
                    f"  round {round_no} {mode:6s}: {result['rate']:7.1f} transfers/s  "
                    f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
                    f"conflict retries {result['conflicts']:5d}  errors {result['errors'] or 0}",
                    flush=True,
                )
        med = {
            m: {k: statistics.median(r[k] for r in rs) for k in ("rate", "p50_ms", "p99_ms")}
            for m, rs in phases.items()
        }
        ratio = med["engine"]["rate"] / med["bare"]["rate"]
        for mode in ("bare", "engine"):
            print(
                f"median {mode:6s}: {med[mode]['rate']:7.1f} transfers/s  p50 {med[mode]['p50_ms']:6.1f} ms  "
                f"p99 {med[mode]['p99_ms']:7.1f} ms"
            )
        print(f"engine / bare = {ratio:.2f}  (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})")
        report = ledger_reconcile()
        print(report.summary().splitlines()[-1])
        return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
