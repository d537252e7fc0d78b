"""Real concurrency: separate OS processes against the real server, then the invariant check."""

import random
from collections import Counter

import pytest

from aegis.mongo import collection
from ledger.models import AuditLog, LedgerEntry
from ledger.reconcile import ledger_reconcile
from tests.factories import make_account
from tests.transfers.procs import run_workers
from transfers.models import Transaction

pytestmark = pytest.mark.slow


def assert_reconciled():
    report = ledger_reconcile()
    assert report.ok, report.summary()
    assert report.by_status.get("PROCESSING", 0) == 0, report.summary()


def test_16_clients_2000_random_transfers_keep_every_invariant(fund, subprocess_env):
    accounts = [fund(make_account(), 300_000) for _ in range(10)]
    ids = [str(a.pk) for a in accounts]
    rng = random.Random(20261124)
    specs = []
    for worker in range(16):
        ops = []
        for n in range(125):
            sender, receiver = rng.sample(ids, 2)
            # Up to ₹2,000 from ₹3,000 balances: insufficient funds happen all the time.
            ops.append(
                {
                    "op": "transfer",
                    "from": sender,
                    "to": receiver,
                    "amount": rng.randint(1, 200_000),
                    "key": f"w{worker}-{n}",
                }
            )
        # After a 503 released its claim, the same-key retry may briefly see it in flight (409).
        specs.append({"ops": ops, "retry_codes": ["transfer_busy", "transfer_in_flight"], "busy_retries": 10})
    results = run_workers(specs, subprocess_env)

    outcomes = Counter(r["outcome"] for r in results)
    assert len(results) == 2000
    assert set(outcomes) <= {"completed", "failed"}, [r for r in results if r["outcome"] not in ("completed", "failed")]
    failure_codes = Counter(r.get("code") for r in results if r["outcome"] == "failed")
    # Only business failures: a write conflict never becomes a FAILED transfer.
    assert set(failure_codes) <= {"insufficient_funds"}, failure_codes
    assert outcomes["completed"] > 200 and outcomes["failed"] > 20, outcomes
    print(f"busy answers retried by clients: {sum(r['busy'] for r in results)}")
    assert collection(LedgerEntry).count_documents({}) == 2 * (outcomes["completed"] + 10)
    assert_reconciled()


def test_same_key_from_20_clients_at_once_moves_money_once(funded_pair, subprocess_env):
    sender, receiver = funded_pair
    op = {"op": "transfer", "from": str(sender.pk), "to": str(receiver.pk), "amount": 25_000, "key": "one-key"}
    results = run_workers([{"ops": [op]} for _ in range(20)], subprocess_env)

    outcomes = Counter((r["outcome"], r.get("code")) for r in results)
    assert outcomes[("completed", None)] == 1, outcomes
    assert set(outcomes) <= {("completed", None), ("replayed", None), ("error", "transfer_in_flight")}, outcomes
    ids = {r["id"] for r in results if "id" in r}
    assert len(ids) == 1
    sender.refresh_from_db()
    receiver.refresh_from_db()
    assert (sender.balance, receiver.balance) == (475_000, 25_000)
    assert_reconciled()


def test_concurrent_retries_of_a_failed_key_run_at_most_once_per_allowed_attempt(funded_pair, subprocess_env):
    sender, receiver = funded_pair
    op = {"op": "transfer", "from": str(sender.pk), "to": str(receiver.pk), "amount": 900_000, "key": "retry-me"}
    first = run_workers([{"ops": [op]}], subprocess_env)
    assert first[0]["outcome"] == "failed" and first[0]["retry_count"] == 1

    results = run_workers([{"ops": [op]} for _ in range(12)], subprocess_env)
    executions = [r for r in results if r["outcome"] == "failed"]
    others = Counter((r["outcome"], r.get("code")) for r in results if r["outcome"] != "failed")
    assert set(others) <= {("exhausted", "retries_exhausted"), ("error", "transfer_in_flight")}, others
    txn = collection(Transaction).find_one({"idempotency_key": "retry-me"})
    assert txn["retry_count"] <= 3
    # Every execution is one audited failure; never more than the 2 retries that were left.
    assert len(executions) == txn["retry_count"] - 1 <= 2
    audited = AuditLog.objects.filter(transaction_id=str(txn["_id"]), action="TRANSFER_FAILED").count()
    assert audited == txn["retry_count"]
    assert sorted(r["retry_count"] for r in executions) == list(range(2, txn["retry_count"] + 1))
    assert_reconciled()


# Both protocols: the gate (the default) and the optimistic one it falls back to (gate off).
@pytest.mark.parametrize("gate", ["on", "off"])
def test_hot_account_16_clients_all_complete_without_conflict_failures(fund, subprocess_env, gate):
    subprocess_env = dict(subprocess_env, AEGIS_TRANSFER_GATE=gate)
    hot = fund(make_account(), 5_000_000)  # ₹50,000
    receivers = [str(make_account().pk) for _ in range(8)]
    specs = [
        {
            "ops": [
                {
                    "op": "transfer",
                    "from": str(hot.pk),
                    "to": receivers[(w + n) % 8],
                    "amount": 1_000,
                    "key": f"hot-{w}-{n}",
                }
                for n in range(15)
            ]
        }
        for w in range(16)
    ]
    results = run_workers(specs, subprocess_env)
    outcomes = Counter(r["outcome"] for r in results)
    assert outcomes == {"completed": 240}, Counter((r["outcome"], r.get("code")) for r in results)
    hot.refresh_from_db()
    assert hot.balance == 5_000_000 - 240 * 1_000
    assert_reconciled()


def test_hosts_that_do_not_share_a_gate_queue_on_the_server_and_keep_every_invariant(fund, subprocess_env, tmp_path):
    """12 processes as 4 hosts (each its own VAR_DIR, so its own lock files) on one hot sender and
    one hot receiver: between hosts only the database queues them (the account documents written
    first, a conflict waits for the holder), and every transfer still completes exactly once."""
    hot_sender = fund(make_account(), 3_000_000)
    hot_receiver = make_account()
    others = [fund(make_account(), 1_000_000) for _ in range(6)]
    specs = []
    for w in range(12):
        host = {"AEGIS_VAR_DIR": str(tmp_path / f"host-{w % 4}")}
        if w % 2:
            ops = [
                {
                    "op": "transfer",
                    "from": str(hot_sender.pk),
                    "to": str(others[(w + n) % 6].pk),
                    "amount": 500,
                    "key": f"hs-{w}-{n}",
                }
                for n in range(12)
            ]
        else:
            ops = [
                {
                    "op": "transfer",
                    "from": str(others[(w + n) % 6].pk),
                    "to": str(hot_receiver.pk),
                    "amount": 300,
                    "key": f"hr-{w}-{n}",
                }
                for n in range(12)
            ]
        specs.append(
            {"ops": ops, "env": host, "retry_codes": ["transfer_busy", "transfer_in_flight"], "busy_retries": 10}
        )
    stats = []
    results = run_workers(specs, subprocess_env, stats=stats)

    outcomes = Counter(r["outcome"] for r in results)
    assert outcomes == {"completed": 144}, Counter((r["outcome"], r.get("code")) for r in results)
    assert sum(s["queue_waits"] for s in stats) > 0, stats  # the hosts did meet in the database
    hot_sender.refresh_from_db()
    hot_receiver.refresh_from_db()
    assert hot_sender.balance == 3_000_000 - 72 * 500
    assert hot_receiver.balance == 72 * 300
    assert_reconciled()
