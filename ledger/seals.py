"""Sealed digests of the audit log: tamper evidence kept off the hot path.

A per-entry chain (as the ledger has) would make every audit write read and move a head that all
writers share, one contended document for the whole bank. Instead `manage.py seal_audit` (every
few minutes, beside the dispatcher) seals what was written up to a few minutes ago: SHA-256 over
each entry's canonical BSON-as-JSON, in (created_at, _id) order, starting from the previous
seal's digest, stored as an `AuditSeal`. An entry edited, deleted or inserted in a sealed range
changes that seal's recomputed digest (or count), which `reconcile` reports with the seal's seq
and range. Entries newer than the last seal are not yet protected: at most SEAL_DELAY plus the
sealing interval of history.

Why the delay: an entry is stamped before its transaction commits, so one committing late could
appear inside a range already sealed; no transaction lives longer than the server's
transactionLifetimeLimitSeconds (30 s recommended, docs/deployment.md), well inside SEAL_DELAY.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bson import Int64, ObjectId, json_util
from django.utils import timezone

from aegis.clock import aware
from aegis.mongo import collection
from ledger.models import AuditLog, AuditSeal

SEAL_DELAY = timedelta(minutes=5)
# A seal covers at most this span of the log, so each read stays a few minutes of history (a bank
# that never sealed catches up seal by seal: `seal_audit` loops until it reaches the cutoff).
SEAL_SPAN = timedelta(minutes=10)
CHUNK = 1_000  # entries per bounded range read
_JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)


def entry_text(entry: dict) -> str:
    """Every field of the stored entry, as canonical extended JSON with sorted keys."""
    return json_util.dumps(entry, sort_keys=True, separators=(",", ":"), json_options=_JSON)


def _position(entry: dict) -> tuple[datetime, ObjectId]:
    return aware(entry["created_at"]), entry["_id"]


def _range(after: tuple[datetime, ObjectId] | None, through: tuple[datetime, ObjectId]) -> Iterator[dict]:
    """Entries with after < (created_at, _id) <= through, in order, CHUNK at a time on audit_created_id.

    Each read is a range bounded at both ends: from the last position read to `through`'s instant.
    """
    logs = collection(AuditLog)
    while True:
        if after is None:
            query = {"created_at": {"$lte": through[0]}}
        else:
            # Same instant, larger _id; or a later instant. Two bounded reads, never an `$or`.
            query = {"created_at": {"$gt": after[0], "$lte": through[0]}}
            same = logs.find({"created_at": after[0], "_id": {"$gt": after[1]}}).sort("_id", 1).limit(CHUNK)
            tied = [e for e in same if _position(e) <= through]
            yield from tied
            if len(tied) == CHUNK:
                after = _position(tied[-1])
                continue
        batch = list(logs.find(query).sort([("created_at", 1), ("_id", 1)]).limit(CHUNK))
        batch = [e for e in batch if _position(e) <= through]
        yield from batch
        if len(batch) < CHUNK:
            return
        after = _position(batch[-1])


@dataclass(frozen=True)
class Digest:
    digest: str
    entries: int
    last: tuple[datetime, ObjectId] | None


def digest_range(prev_digest: str, after, through) -> Digest:
    running, count, last = hashlib.sha256(prev_digest.encode()), 0, None
    for entry in _range(after, through):
        running.update(b"\n" + entry_text(entry).encode())
        count, last = count + 1, _position(entry)
    return Digest(running.hexdigest(), count, last)


def last_seal() -> dict | None:
    return collection(AuditSeal).find_one({}, sort=[("seq", -1)])  # audit_seal_seq: one index entry


def _through(seal: dict | None) -> tuple[datetime, ObjectId] | None:
    return (aware(seal["through_at"]), ObjectId(seal["through_id"])) if seal else None


def audit_seal(*, now: datetime | None = None) -> dict | None:
    """Seal the entries written since the last seal and before now - SEAL_DELAY; None if there are none.

    One process at a time in effect: two sealers racing insert the same `seq`, and the unique
    index refuses the second (it then seals nothing this round).
    """
    now = now or timezone.now()
    previous = last_seal()
    # The span starts at the first entry not sealed yet (so a quiet hour is skipped, not sealed empty).
    first = next(_range(_through(previous), (now, ObjectId("f" * 24))), None)
    if first is None:
        return None
    start_at = _position(first)[0]
    cutoff = min(now - SEAL_DELAY, start_at + SEAL_SPAN)
    upper = (cutoff, ObjectId("f" * 24))  # every entry at or before the cutoff instant
    found = digest_range(previous["digest"] if previous else "", _through(previous), upper)
    if found.entries == 0:
        return None
    seal = {
        "seq": Int64((previous["seq"] if previous else 0) + 1),
        "through_at": found.last[0],
        "through_id": str(found.last[1]),
        "entries": Int64(found.entries),
        "digest": found.digest,
        "prev_digest": previous["digest"] if previous else "",
        "sealed_at": now,
    }
    collection(AuditSeal).insert_one(seal)
    return seal


def audit_seal_all(*, now: datetime | None = None) -> list[dict]:
    """Seal span after span until the log is sealed up to now - SEAL_DELAY."""
    now = now or timezone.now()
    made = []
    while (seal := audit_seal(now=now)) is not None:
        made.append(seal)
    return made


def seals_verify(*, since: datetime | None = None) -> list[str]:
    """Recompute every seal (or those sealed after `since`, continuing from the one before them).

    Returns one violation per seal whose range no longer hashes to its digest, or whose chain of
    seals is broken.
    """
    seals = collection(AuditSeal)
    query = {"sealed_at": {"$gt": since}} if since else {}
    found: list[str] = []
    previous = None
    if since is not None:
        first = seals.find_one(query, sort=[("seq", 1)])
        if first is None:
            return []
        previous = seals.find_one({"seq": first["seq"] - 1})
    for seal in seals.find(query).sort("seq", 1):  # small: one seal per few minutes of history
        expected_seq = (previous["seq"] if previous else 0) + 1
        prev_digest = previous["digest"] if previous else ""
        if seal["seq"] != expected_seq or seal.get("prev_digest", "") != prev_digest:
            found.append(
                f"audit seal {seal['seq']}: does not follow seal {expected_seq - 1} (a seal was removed or changed)"
            )
        got = digest_range(prev_digest, _through(previous), _through(seal))
        if got.digest != seal["digest"] or got.entries != seal["entries"]:
            start = f"after {previous['through_at']:%Y-%m-%d %H:%M:%S}" if previous else "from the start"
            found.append(
                f"audit seal {seal['seq']} ({start} through {aware(seal['through_at']):%Y-%m-%d %H:%M:%S} UTC, "
                f"{seal['entries']} entries): the audit log no longer matches it ({got.entries} entries now): "
                "an entry in that range was changed, removed or added"
            )
        previous = seal
    return found
