"""Sealed digests of the audit log (ledger.seals): an entry changed, removed or added in a sealed
range is reported by `reconcile` with the seal's seq; entries stay off any shared chain head."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from bson import ObjectId
from django.core.management import call_command
from django.utils import timezone

from aegis.mongo import collection
from ledger.models import AuditLog, AuditSeal
from ledger.reconcile import ledger_reconcile
from ledger.seals import SEAL_DELAY, audit_seal, audit_seal_all, seals_verify
from ledger.services import audit_append


def write(n: int, *, at, action="LOGIN_SUCCESS") -> None:
    for i in range(n):
        audit_append(
            None,
            action=action,
            status="SUCCESS",
            user_id=f"{i:024x}",
            details={"ip": "10.0.0.1"},
            now=at + timedelta(seconds=i),
        )


@pytest.fixture
def sealed_log():
    """30 entries an hour ago and 5 just now; everything older than SEAL_DELAY sealed."""
    now = timezone.now()
    write(30, at=now - timedelta(hours=1))
    write(5, at=now)
    seals = audit_seal_all(now=now)
    return now, seals


def test_old_entries_are_sealed_new_ones_wait(sealed_log):
    now, seals = sealed_log
    assert [s["seq"] for s in seals] == [1] and seals[0]["entries"] == 30
    assert audit_seal(now=now) is None  # nothing older than the delay is left unsealed
    later = audit_seal_all(now=now + SEAL_DELAY + timedelta(seconds=10))
    assert [(s["seq"], s["entries"], s["prev_digest"]) for s in later] == [(2, 5, seals[0]["digest"])]
    assert seals_verify() == []
    assert ledger_reconcile(record_checkpoints=False).ok


def test_a_long_unsealed_history_is_sealed_span_by_span():
    now = timezone.now()
    for hours in (5, 3, 1):  # quiet gaps between them are skipped, not sealed empty
        write(4, at=now - timedelta(hours=hours))
    seals = audit_seal_all(now=now)
    assert [s["entries"] for s in seals] == [4, 4, 4]
    assert seals_verify() == []


@pytest.mark.parametrize("tamper", ["edit", "delete", "insert"])
def test_tampering_inside_a_sealed_range_is_reported_with_the_seal(sealed_log, tamper):
    now, _ = sealed_log
    logs = collection(AuditLog)
    victim = logs.find_one({"created_at": {"$lt": now - timedelta(minutes=30)}}, sort=[("created_at", 1)])
    if tamper == "edit":
        logs.update_one({"_id": victim["_id"]}, {"$set": {"details.ip": "203.0.113.9"}})
    elif tamper == "delete":
        logs.delete_one({"_id": victim["_id"]})
    else:
        logs.insert_one({**victim, "_id": ObjectId(), "action": "LOGOUT"})
    found = ledger_reconcile(record_checkpoints=False).violations
    assert len(found) == 1 and found[0].startswith("audit seal 1 (from the start through "), found
    assert "an entry in that range was changed, removed or added" in found[0]


def test_a_removed_seal_breaks_the_chain_of_seals(sealed_log):
    now, _ = sealed_log
    audit_seal_all(now=now + SEAL_DELAY + timedelta(seconds=10))
    collection(AuditSeal).delete_one({"seq": 1})
    assert any("audit seal 2: does not follow seal 0" in v for v in seals_verify())


def test_incremental_reconcile_verifies_only_the_new_seals(fund, sealed_log):
    from tests.factories import make_account

    now, _ = sealed_log
    fund(make_account(), 1_000)
    assert ledger_reconcile().ok  # a clean full run: checkpoints written now
    collection(AuditLog).update_one({"created_at": {"$lt": now - timedelta(minutes=30)}}, {"$set": {"status": "X"}})
    assert ledger_reconcile(incremental=True, record_checkpoints=False).ok  # seal 1 was verified before
    assert not ledger_reconcile(record_checkpoints=False).ok  # the full run reads every seal


def test_the_command(sealed_log):
    now, _ = sealed_log
    write(3, at=now - timedelta(minutes=20))  # late, but older than the delay: the next seal takes them
    out = StringIO()
    call_command("seal_audit", stdout=out)
    assert "audit seal 2: 3 entries through" in out.getvalue()
