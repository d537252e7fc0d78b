"""Dispatchers as separate OS processes: SIGKILL mid-batch, and two at once (`manage.py dispatch_outbox`).

The `probe` handler (AEGIS_TEST_OUTBOX_PROBE=1) records every call outside any transaction, so a
second delivery of one event to one handler would show up as a second probe row.
"""

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from aegis.mongo import collection, get_db
from events.models import DispatcherHeartbeat, OutboxDelivery, OutboxEvent
from notifications.handlers import notifications_for_event
from notifications.models import Notification
from tests.factories import make_account
from tests.notifications.conftest import events
from transfers.services import transfer_create

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _fresh_probe():
    get_db().drop_collection("outbox_test_probe")  # not a model: the per-test flush does not reach it
    yield
    get_db().drop_collection("outbox_test_probe")


class DispatcherProcess:
    def __init__(self, env: dict, **extra_env):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "dispatch_outbox", "--interval", "0.05"],
            cwd=ROOT,
            env={**env, **extra_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for_line(self, prefix: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith(prefix) for line in self.lines):
                return
            assert self.proc.poll() is None, "\n".join(self.lines[-30:])
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} line in time:\n" + "\n".join(self.lines[-30:]))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self._reader.join(timeout=5)
        return code


def wait_until_all_delivered(expected: int, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if collection(OutboxEvent).count_documents({"status": "DELIVERED"}) == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"{collection(OutboxEvent).count_documents({'status': 'DELIVERED'})} of {expected} delivered")


def make_traffic(fund, accounts: int, transfers: int) -> None:
    people = [make_account() for _ in range(accounts)]
    for person in people:
        fund(person, 200_000)
    for i in range(transfers):
        sender, receiver = people[i % accounts], people[(i * 7 + 1) % accounts]
        if sender.pk == receiver.pk:
            receiver = people[(i + 1) % accounts]
        transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(receiver.pk),
            amount_paise=100 + i,
            idempotency_key=f"traffic-{i}",
        )


def assert_each_event_delivered_once_in_order() -> None:
    all_events = events()
    probes = list(get_db()["outbox_test_probe"].find())
    per_event = Counter(p["event_id"] for p in probes)
    assert set(per_event) == {str(e["_id"]) for e in all_events}
    assert set(per_event.values()) == {1}, "an event reached the probe handler twice"
    assert OutboxDelivery.objects.count() == 3 * len(all_events)  # notifications, rollups, probe
    # Notifications: exactly the expected ones, none lost, none twice.
    expected = Counter()
    for event in all_events:
        for user, _, message in notifications_for_event(event):
            expected[(str(event["_id"]), str(user), message)] += 1
    actual = Counter((n.event_id, str(n.user_id), n.message) for n in Notification.objects.all())
    assert actual == expected
    # In order per account: probe calls of one aggregate follow the events' order.
    order = {str(e["_id"]): i for i, e in enumerate(all_events)}
    by_aggregate: dict[str, list[int]] = {}
    for probe in sorted(probes, key=lambda p: p["at"]):
        by_aggregate.setdefault(probe["aggregate_id"], []).append(order[probe["event_id"]])
    for aggregate, seq in by_aggregate.items():
        assert seq == sorted(seq), f"events of {aggregate} delivered out of order: {seq}"


def test_dispatcher_killed_mid_batch_loses_and_duplicates_nothing(fund, subprocess_env):
    make_traffic(fund, accounts=4, transfers=16)
    total = len(events())
    env = {**subprocess_env, "AEGIS_TEST_OUTBOX_PROBE": "1", "AEGIS_OUTBOX_LEASE_SECONDS": "2"}

    doomed = DispatcherProcess(env, AEGIS_TEST_OUTBOX_PAUSE_AFTER="7")
    doomed.wait_for_line("PAUSED")
    doomed.kill()  # the 7th event's handlers committed; it was not yet marked DELIVERED
    assert collection(OutboxEvent).count_documents({"status": "DELIVERED"}) == 6
    assert OutboxDelivery.objects.count() == 3 * 7

    survivor = DispatcherProcess(env)
    wait_until_all_delivered(total)
    assert survivor.stop() == 0
    assert_each_event_delivered_once_in_order()
    assert not DispatcherHeartbeat.objects.filter(pid=survivor.proc.pid).exists()  # retired on SIGTERM


def test_two_dispatchers_at_once_deliver_each_event_once_per_handler(fund, subprocess_env):
    make_traffic(fund, accounts=6, transfers=60)
    total = len(events())
    env = {**subprocess_env, "AEGIS_TEST_OUTBOX_PROBE": "1"}
    pair = [DispatcherProcess(env), DispatcherProcess(env)]
    try:
        wait_until_all_delivered(total, timeout=50)
    finally:
        codes = [d.stop() for d in pair]
    assert codes == [0, 0]
    assert_each_event_delivered_once_in_order()
    pids = {p["pid"] for p in get_db()["outbox_test_probe"].find()}
    print(f"{total} events; delivered by {len(pids)} dispatcher process(es)")
