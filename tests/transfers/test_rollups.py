"""Statistics from rollups: kept exact by the outbox's "rollups" handler, checked against a recount.

Concurrency and crash tests use real OS processes (transfer workers, `manage.py dispatch_outbox`)
against the real embedded server, then compare `rollups_read()` with `rollups_recount()` and the
staff stats page / API with the recount, and end with the ledger reconciliation.
"""

import logging
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from django.core.management import call_command
from django.test import Client

from accounts.auth import token_issue
from accounts.models import Role
from aegis.clock import bank_day_start
from aegis.money import rupees
from aegis.mongo import collection
from events.dispatcher import Dispatcher, registered_handlers
from events.models import OutboxDelivery, OutboxEvent
from ledger.reconcile import ledger_reconcile
from notifications.handlers import notify_users
from tests.factories import make_account, make_user
from tests.notifications.test_dispatcher_processes import DispatcherProcess
from tests.transfers.procs import run_workers
from transfers import exceptions as exc
from transfers.models import StatsRollup, Transaction
from transfers.rollups import SHARDS, rollups_read, rollups_rebuild, rollups_recount
from transfers.selectors import transaction_stats
from transfers.services import system_fund, transfer_create, transfers_recover_stale


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"
    settings.AEGIS_OUTBOX_BACKOFF_SECONDS = 0
    settings.AEGIS_OUTBOX_BACKOFF_MAX_SECONDS = 0


def drain(dispatcher: Dispatcher | None = None) -> None:
    dispatcher = dispatcher or Dispatcher()
    for _ in range(50):
        if not any(dispatcher.run_once().values()):
            return
    raise AssertionError("the outbox did not drain")


def transfer(sender, receiver, paise: int, key: str):
    try:
        return transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(receiver.pk),
            amount_paise=paise,
            idempotency_key=key,
        ).transaction
    except exc.TransferFailed as failure:
        return failure.transaction


def api_stats(staff) -> dict:
    response = Client().get("/api/admin/stats", headers={"Authorization": f"Bearer {token_issue(user=staff)}"})
    assert response.status_code == 200
    return response.json()["stats"]


def assert_figures_match_recount(staff) -> dict:
    """Rollups == recount, and the staff API and page show the recount's figures."""
    recount = rollups_recount()
    assert rollups_read() == recount
    stats = api_stats(staff)
    assert stats["byStatus"] == {"INITIATED": 0, "PROCESSING": 0, **recount["byStatus"]}
    assert stats["transactions"] == sum(recount["byStatus"].values())
    assert stats["failures"] == recount["byStatus"]["FAILED"]
    assert stats["completedVolume"] == rupees(recount["completedVolume"])
    zero = {"completed": 0, "failed": 0, "volume": 0}
    for day in stats["daily"]:
        want = recount["daily"].get(day["date"], zero)
        assert day == {"date": day["date"], **want, "volume": rupees(want["volume"])}, day
    shown = {d for d in recount["daily"] if recount["daily"][d]["completed"] or recount["daily"][d]["failed"]}
    assert shown <= {d["date"] for d in stats["daily"]}  # everything here happened in the last days
    client = Client()
    client.force_login(staff)
    page = client.get("/staff/stats").content.decode()
    assert f'<span class="label">Transactions</span><span class="value">{stats["transactions"]}</span>' in page
    assert f'<span class="label">Failures</span><span class="value">{stats["failures"]}</span>' in page
    return recount


def assert_reconciled() -> None:
    report = ledger_reconcile()
    assert report.ok, report.summary()


def wait_for_drain(timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if collection(OutboxEvent).count_documents({"status": {"$ne": "DELIVERED"}}) == 0:
            return
        time.sleep(0.2)
    left = collection(OutboxEvent).count_documents({"status": {"$ne": "DELIVERED"}})
    raise AssertionError(f"{left} events still undelivered")


# --- (c) unit level ---------------------------------------------------------------------------------


def test_a_retried_failure_that_completes_moves_one_from_failed_to_completed(funded_pair, bank):
    sender, receiver = funded_pair  # ₹5,000
    staff = make_user(role=Role.ADMIN)
    drain()
    failed = transfer(sender, receiver, 900_000, "big-1")
    assert failed["status"] == "FAILED" and failed["retry_count"] == 1
    drain()
    before = rollups_read()
    assert before["byStatus"] == {"COMPLETED": 1, "FAILED": 1}  # the funding, and this failure
    assert before["completedVolume"] == 0  # funding is not customer volume
    today = bank_day_start(datetime.now(UTC)).date().isoformat()
    assert before["daily"] == {today: {"completed": 0, "failed": 1, "volume": 0}}

    # Retried, still refused: nothing changes.
    assert transfer(sender, receiver, 900_000, "big-1")["retry_count"] == 2
    drain()
    assert rollups_read() == before

    system_fund(actor=bank.system_user, to_account_id=str(sender.pk), amount_paise=500_000, idempotency_key="top-up")
    done = transfer(sender, receiver, 900_000, "big-1")
    assert done["status"] == "COMPLETED" and done["retry_count"] == 2
    event = collection(OutboxEvent).find_one(
        {"event_type": "transaction.completed", "payload.transactionId": str(done["_id"])}
    )
    assert event["payload"]["previousStatus"] == "FAILED" and event["payload"]["kind"] == "TRANSFER"
    drain()
    after = rollups_read()
    assert after["byStatus"] == {"COMPLETED": 3, "FAILED": 0}
    assert after["completedVolume"] == 900_000
    assert after["daily"] == {today: {"completed": 1, "failed": 0, "volume": 900_000}}
    assert_figures_match_recount(staff)


def test_an_interrupted_claim_is_counted_failed_then_completed_once(funded_pair):
    sender, receiver = funded_pair
    staff = make_user(role=Role.ADMIN)
    ok = transfer(sender, receiver, 1_000, "fine-1")
    # A worker that died holding its claim: the sweeper settles it FAILED (interrupted), and the
    # same-key retry completes it.
    stuck = {
        **ok,
        "_id": ObjectId(),
        "idempotency_key": "stuck-1",
        "status": "PROCESSING",
        "attempt_id": "dead",
        "counted_status": "",
        "lease_expires_at": datetime.now(UTC) - timedelta(seconds=5),
        "completed_at": None,
    }
    collection(Transaction).insert_one(stuck)
    drain()
    assert transaction_stats()["byStatus"]["PROCESSING"] == 1  # counted live while in flight
    assert transfers_recover_stale()["recovered"] == 1
    drain()
    assert rollups_read()["byStatus"]["FAILED"] == 1
    retried = transfer(sender, receiver, stuck["amount"], "stuck-1")
    assert retried["status"] == "COMPLETED" and retried["retry_count"] == 0  # interruption is not the user's
    drain()
    assert rollups_read()["byStatus"] == {"COMPLETED": 3, "FAILED": 0}
    assert_figures_match_recount(staff)


def test_events_from_before_rollups_are_skipped_with_a_reason(funded_pair, caplog):
    sender, receiver = funded_pair
    drain()
    before = rollups_read()
    now = datetime.now(UTC)
    collection(OutboxEvent).insert_one(
        {
            "event_type": "transaction.completed",
            "aggregate_id": str(sender.pk),
            "payload": {
                "transactionId": str(ObjectId()),
                "fromAccount": str(sender.pk),
                "toAccount": str(receiver.pk),
                "amount": 100,
                "status": "COMPLETED",
                "retryCount": 0,
                "failureReason": "",
                "requestId": "",
            },
            "status": "PENDING",
            "attempts": 0,
            "created_at": now,
            "delivered_at": None,
        }
    )
    caplog.set_level(logging.WARNING, logger="aegis.rollups")
    drain()
    assert collection(OutboxEvent).count_documents({"status": "DELIVERED"}) == collection(OutboxEvent).count_documents(
        {}
    )
    assert rollups_read() == before
    [record] = [r for r in caplog.records if r.name == "aegis.rollups"]
    assert "no kind, createdAt, previousStatus" in record.getMessage() and "rollups_rebuild" in record.getMessage()


def test_rebuild_on_a_bank_built_without_rollups_gives_the_recount(fund, bank):
    people = [fund(make_account(), 50_000) for _ in range(4)]
    staff = make_user(role=Role.ADMIN)
    for i in range(12):
        transfer(people[i % 4], people[(i + 1) % 4], 20_000 + 20_000 * (i % 3), f"old-{i}")  # some refused
    # History as it was before rollups: some events delivered without the rollups handler...
    drain(Dispatcher(handlers={"notifications": notify_users}))
    transfer(people[0], people[2], 1_000, "old-late-1")  # ...and one still pending
    # ...and a record whose _id is from long ago (bulk-built banks): the rebuild walks every id.
    ancient = {
        **collection(Transaction).find_one({"status": "COMPLETED", "kind": "TRANSFER"}),
        "_id": ObjectId.from_datetime(datetime(2001, 5, 1, tzinfo=UTC)),
        "idempotency_key": "ancient",
    }
    collection(Transaction).insert_one(ancient)
    assert collection(StatsRollup).count_documents({}) == 0
    recount = rollups_recount()
    assert recount["byStatus"] == {
        "COMPLETED": collection(Transaction).count_documents({"status": "COMPLETED"}),  # the ancient one too
        "FAILED": collection(Transaction).count_documents({"status": "FAILED"}),
    }
    assert recount["byStatus"]["FAILED"] > 0

    result = rollups_rebuild()
    assert result["eventsMarked"] == 1
    assert rollups_read() == recount
    # The pending event was counted by the rebuild: delivering it now must not count it again.
    drain()
    assert rollups_read() == recount
    # And from here on the handler keeps them exact.
    transfer(people[1], people[3], 2_000, "new-1")
    drain()
    assert rollups_read() == rollups_recount()
    # The ancient copy moved no money: out again before the reconciliation, and rebuilt once more.
    assert collection(Transaction).delete_one({"idempotency_key": "ancient"}).deleted_count == 1
    rollups_rebuild()
    assert_figures_match_recount(staff)
    call_command("rollups_rebuild", "--check")
    assert_reconciled()


def test_the_stats_reads_are_a_few_small_documents(funded_pair):
    sender, receiver = funded_pair
    for i in range(5):
        transfer(sender, receiver, 100 + i, f"small-{i}")
    drain()
    docs = list(collection(StatsRollup).find())
    assert 2 <= len(docs) <= 2 * SHARDS  # (total, today) x the shards these ids fell in
    assert {d["scope"] for d in docs} == {"total", "day"}
    stats = transaction_stats()
    assert stats["byStatus"]["COMPLETED"] == 6 and stats["asOf"] is not None
    # Each read the stats make walks an index range bounded at both ends (never a scan).
    window = {"scope": "day", "day": {"$gte": "2026-01-01", "$lte": "2026-01-30"}}
    plans = [
        collection(StatsRollup).find(window).explain(),
        collection(StatsRollup).find({"scope": "total", "day": ""}).explain(),
        collection(Transaction).find({"status": "PROCESSING"}).explain(),
    ]
    for plan in plans:
        assert "IXSCAN" in str(plan["queryPlanner"]) and "COLLSCAN" not in str(plan["queryPlanner"]), plan
    assert plans[1]["executionStats"]["totalDocsExamined"] <= SHARDS


# --- (a) a concurrent run, drained by dispatcher processes ------------------------------------------


@pytest.mark.slow
def test_concurrent_transfers_failures_retries_and_funding_keep_rollups_exact(fund, bank, subprocess_env):
    accounts = [fund(make_account(), 100_000) for _ in range(6)]  # ₹1,000 each
    ids = [str(a.pk) for a in accounts]
    staff = make_user(role=Role.ADMIN)
    rng = random.Random(20261201)
    env = {**subprocess_env, "AEGIS_OUTBOX_LEASE_SECONDS": "5"}
    dispatchers = [DispatcherProcess(env), DispatcherProcess(env)]  # delivering while transfers run
    try:
        specs = []
        for worker in range(4):
            ops = []
            for n in range(25):
                sender, receiver = rng.sample(ids, 2)
                ops.append(
                    {
                        "op": "transfer",
                        "from": sender,
                        "to": receiver,
                        "amount": rng.randint(1, 60_000),
                        "key": f"w{worker}-{n}",
                    }
                )
            specs.append({"ops": ops, "retry_codes": ["transfer_busy", "transfer_in_flight"], "busy_retries": 10})
        first = run_workers(specs, subprocess_env)
        failed = [r for r in first if r["outcome"] == "failed"]
        assert failed and any(r["outcome"] == "completed" for r in first), first
        by_key = {op["key"]: op for spec in specs for op in spec["ops"]}

        # Retries of the failed keys while the system funds their senders: some of them now succeed.
        fundings = [{"op": "fund", "to": i, "amount": 1_000_000, "key": f"refill-{i}"} for i in ids]
        retries = [by_key[r["key"]] for r in failed]
        second = run_workers(
            [{"ops": fundings}]
            + [
                {"ops": retries[w::3], "retry_codes": ["transfer_busy", "transfer_in_flight"], "busy_retries": 10}
                for w in range(3)
            ],
            subprocess_env,
        )
        assert {r["outcome"] for r in second} <= {"completed", "failed", "replayed"}, second
        # And once more, after the funding surely landed: every one of them completes.
        third = run_workers([{"ops": retries}], subprocess_env)
        assert {r["outcome"] for r in third} <= {"completed", "replayed"}, third
        assert any(r["outcome"] == "completed" and r["retry_count"] >= 1 for r in second + third)
        wait_for_drain()
    finally:
        codes = [d.stop() for d in dispatchers]
    assert codes == [0, 0]
    assert collection(OutboxEvent).count_documents({"status": "PARKED"}) == 0
    recount = assert_figures_match_recount(staff)
    assert recount["byStatus"]["FAILED"] == 0 and recount["byStatus"]["COMPLETED"] == collection(
        Transaction
    ).count_documents({})
    assert len({d["shard"] for d in collection(StatsRollup).find({"scope": "total"})}) > 1
    assert_reconciled()


# --- (b) the rollup writer killed mid-delivery ---------------------------------------------------------


@pytest.mark.slow
def test_rollup_writer_killed_mid_delivery_counts_each_event_once(fund, bank, subprocess_env):
    people = [fund(make_account(), 30_000) for _ in range(4)]
    staff = make_user(role=Role.ADMIN)
    for i in range(14):
        amount = 500_000 if i % 5 == 4 else 6_000 + 1_000 * (i % 4)  # more than the whole bank: refused
        transfer(people[i % 4], people[(i * 3 + 1) % 4], amount, f"crash-{i}")
    refused = collection(Transaction).find_one({"status": "FAILED"})
    assert refused is not None
    system_fund(
        actor=bank.system_user,
        to_account_id=str(refused["from_account_id"]),
        amount_paise=600_000,
        idempotency_key="crash-refill",
    )
    owner = next(p for p in people if p.pk == refused["from_account_id"])
    target = next(p for p in people if p.pk == refused["to_account_id"])
    assert transfer(owner, target, refused["amount"], refused["idempotency_key"])["status"] == "COMPLETED"
    total = collection(OutboxEvent).count_documents({})
    handlers = len(registered_handlers())

    env = {**subprocess_env, "AEGIS_OUTBOX_LEASE_SECONDS": "2"}
    doomed = DispatcherProcess(env, AEGIS_TEST_OUTBOX_PAUSE_AFTER="9")
    doomed.wait_for_line("PAUSED")
    doomed.kill()  # the 9th event's handlers (the rollups too) committed; it is not marked DELIVERED
    assert collection(OutboxEvent).count_documents({"status": "DELIVERED"}) == 8
    assert OutboxDelivery.objects.filter(handler="rollups").count() == 9
    assert rollups_read() != rollups_recount()  # mid-way

    survivor = DispatcherProcess(env)
    try:
        wait_for_drain()
    finally:
        assert survivor.stop() == 0
    assert collection(OutboxEvent).count_documents({"status": "DELIVERED"}) == total
    assert OutboxDelivery.objects.count() == handlers * total
    assert_figures_match_recount(staff)
    assert_reconciled()


def test_metrics_read_the_rollups_and_drop_the_delivered_history(funded_pair, bank):
    sender, receiver = funded_pair
    transfer(sender, receiver, 1_000, "metric-1")
    transfer(sender, receiver, 900_000, "metric-2")  # refused
    drain()
    client = Client()
    client.force_login(bank.admin_user)
    text = client.get("/metrics").content.decode()
    lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}
    assert lines['aegis_transfers{status="COMPLETED"}'] == 2  # the funding and metric-1
    assert lines['aegis_transfers{status="FAILED"}'] == 1
    assert lines['aegis_transfers{status="PROCESSING"}'] == 0
    assert lines['aegis_outbox_events{status="PENDING"}'] == 0
    assert not any("DELIVERED" in name for name in lines)
