"""The invariant checker behind `manage.py reconcile` (DESIGN §4); see docs/reconcile.md.

It reports every violation of:
1. money is conserved: the sum of all balances (system account included) is zero, since every
   account opens at zero and money only enters through the system account;
2. no account but the system account is below zero;
3. every COMPLETED transaction has exactly one DEBIT (sender) and one CREDIT (receiver) entry
   of its amount, no transaction in any other status has any entry, and no entry points at a
   transaction that does not exist;
4. each account's balance equals the sum of its ledger entries;
5. each account's entries, in `seq` order, run 1..n with no gap, and each `balance_after` is
   the previous one plus or minus the entry's amount, ending at the balance; their times never
   go back (a balance as-of an instant is one seq: ledger.selectors.balance_as_of);
6. each account's hash chain holds (ledger.chain): every entry's hash matches its content and
   its prev_hash is the hash of the entry before it, and the account's ledger_head is the hash
   of its last entry. An entry edited, deleted or moved in the database is reported with its
   account and seq;
7. the audit log still hashes to every sealed digest (ledger.seals): an entry changed, removed or
   added in a sealed range is reported with the seal's seq and range.

Python holds O(accounts) state, never the history: each account's chain is read in bounded
`seq` ranges (seq is dense, so a range is an exact slice of the unique (account, seq) index),
and transactions in bounded windows. On the embedded server a query costs its whole index
range whatever its `limit`, so every read here is bounded at both ends.

The incremental mode continues each account's chain from its `ReconcileCheckpoint` and checks
only the transactions behind the new entries plus those created since the oldest checkpoint
(less the transfer lease and a margin). Checkpoints are written only by a clean run.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bson import Int64, ObjectId
from django.conf import settings
from pymongo import UpdateOne

from accounts.models import Account, User
from aegis.clock import aware
from aegis.mongo import collection
from ledger.chain import GENESIS, entry_hash
from ledger.models import EntryType, LedgerEntry, ReconcileCheckpoint
from ledger.seals import seals_verify
from transfers.models import Transaction, TransactionStatus

MAX_REPORTED = 50
SEQ_CHUNK = 5_000  # entries per (account, seq) range read
TXN_BATCH = 1_000  # transactions checked per round trip for their entries
WINDOW_TARGET = 2_000  # transactions one time window should hold; its span adapts to reach it
# A claim older than this past the oldest checkpoint could only complete later on a retry or a
# takeover; the margin covers clock skew between app servers.
CHECKPOINT_MARGIN = timedelta(minutes=5)
ACCOUNT_SEQ_ORDER = [("account_id", 1), ("seq", 1)]
MIN_WINDOW, MAX_WINDOW = timedelta(milliseconds=10), timedelta(hours=1)

ENTRY_FIELDS = {
    "account_id": 1, "transaction_id": 1, "type": 1, "amount": 1, "balance_after": 1, "seq": 1, "created_at": 1,
    "currency": 1, "prev_hash": 1, "hash": 1,
}  # fmt: skip
TXN_FIELDS = {"status": 1, "amount": 1, "from_account_id": 1, "to_account_id": 1, "created_at": 1}

# progress(phase, done, total, elapsed_seconds); total is None when it is not known up front.
Progress = Callable[[str, int, int | None, float], None]


@dataclass
class ReconcileReport:
    accounts: int = 0
    transactions: int = 0
    entries: int = 0
    total_balance: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    mode: str = "full"  # "full" or "incremental"
    checkpoints_written: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, message: str) -> None:
        self.violations.append(message)

    def count(self, status: str) -> None:
        self.transactions += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def summary(self) -> str:
        scope = " examined (since the last checkpoints)" if self.mode == "incremental" else ""
        lines = [
            f"mode: {self.mode}  ({self.seconds:.1f} s)",
            f"accounts: {self.accounts}  transactions{scope}: {self.transactions}  "
            f"ledger entries{scope}: {self.entries}",
            "transactions by status: " + (", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items())) or "none"),
            f"sum of balances: {self.total_balance} paise",
        ]
        if self.ok:
            lines.append(f"checkpoints recorded: {self.checkpoints_written}")
            lines.append("reconcile: OK — every invariant holds")
        else:
            lines.append("checkpoints not advanced (violations found)")
            lines.append(f"reconcile: {len(self.violations)} VIOLATION(S)")
            lines += [f"  - {v}" for v in self.violations[:MAX_REPORTED]]
            if len(self.violations) > MAX_REPORTED:
                lines.append(f"  ... and {len(self.violations) - MAX_REPORTED} more")
        return "\n".join(lines)


def ledger_reconcile(
    *,
    incremental: bool = False,
    record_checkpoints: bool = True,
    progress: Progress | None = None,
    seq_chunk: int = SEQ_CHUNK,
    txn_batch: int = TXN_BATCH,
) -> ReconcileReport:
    """Check every invariant (or, `incremental`, what was posted since the last checkpoints).

    A clean run records each account's chain end as its new checkpoint (`record_checkpoints`).
    """
    options = {"progress": progress, "seq_chunk": seq_chunk, "txn_batch": txn_batch}
    report = _Run(incremental=incremental, joins=False, **options).run(record_checkpoints=record_checkpoints)
    if report is None:  # the one-pass fingerprints disagree: find exactly what is wrong, by joins
        report = _Run(incremental=incremental, joins=True, **options).run(record_checkpoints=record_checkpoints)
    return report


class _Run:
    def __init__(self, *, incremental: bool, joins: bool, progress: Progress | None, seq_chunk: int, txn_batch: int):
        self.report = ReconcileReport(mode="incremental" if incremental else "full")
        self.incremental = incremental
        # Without joins (the full mode's first pass) invariant 3 is checked by fingerprints: the
        # multiset of entries must equal the one the COMPLETED transactions imply. Only when they
        # differ does a second pass join each entry to its transaction to say what is wrong.
        self.joins = joins
        self.entry_prints = 0
        self.expected_prints = 0
        self.progress = progress
        self.seq_chunk = max(1, seq_chunk)
        self.txn_batch = max(1, txn_batch)
        self.started = time.monotonic()
        self.entries = collection(LedgerEntry)
        self.transactions = collection(Transaction)
        # Everything below is O(accounts).
        self.accounts: dict[ObjectId, dict] = {}
        self.start: dict[ObjectId, tuple[int, int] | None] = {}  # None: walk the whole chain
        self.running: dict[ObjectId, tuple[int, int]] = {}
        self.last_at: dict[ObjectId, datetime] = {}  # the time of the entry walked last, per account
        self.heads: dict[ObjectId, str] = {}  # the hash of the entry walked last, per account (6)
        self.checkpoint_hash: dict[ObjectId, str] = {}  # the hash each account's walk continues from
        self.completed_checked = 0  # COMPLETED transactions checked from their entries (full mode)
        self.unknown_account_entries = False
        self.earliest_txn_at: datetime | None = None

    # --- the run -------------------------------------------------------------------------------

    def run(self, *, record_checkpoints: bool) -> ReconcileReport | None:
        """The report, or None when the fingerprints disagree (then run again with joins)."""
        report = self.report
        # Taken before the accounts are read: everything posted after it is beyond the chain ends
        # this run verifies, so it is safe to use as the checkpoints' verified_at.
        snapshot_at = datetime.now(UTC)
        self._load_accounts()
        checkpoints = self._load_checkpoints() if self.incremental else {}
        if self.incremental and not checkpoints:  # nothing verified yet: the first run is a full one
            self.incremental = False
            report.mode = "incremental (no checkpoint yet: full)"
        for account_id in self.accounts:
            cp = checkpoints.get(account_id)
            self.start[account_id] = (cp["seq"], cp["balance_after"]) if cp else None
            self.heads[account_id] = self.checkpoint_hash[account_id] = cp.get("hash", GENESIS) if cp else GENESIS

        self._walk_ledger()
        self._find_unknown_accounts()
        for account_id, account in self.accounts.items():
            seq, balance = self.running[account_id]
            if balance != account.get("balance", 0):
                report.add(f"account {account_id}: balance {account.get('balance')} != ledger sum {balance}")
            if seq != account.get("ledger_seq", 0):
                report.add(f"account {account_id}: ledger_seq {account.get('ledger_seq')} != last entry seq {seq}")
            if self.heads[account_id] != account.get("ledger_head", GENESIS):
                report.add(
                    f"account {account_id}: ledger_head does not match the hash of its last entry (seq {seq}): "
                    "the chain's end was changed"
                )

        if self.incremental and checkpoints:
            oldest = min(cp["verified_at"] for cp in checkpoints.values())
            since = aware(oldest) - timedelta(seconds=settings.AEGIS_TRANSFER_LEASE_SECONDS) - CHECKPOINT_MARGIN
            if self._check_recent_transactions(since, snapshot_at) is False:
                return None
        elif self._check_all_transactions(snapshot_at) is False:
            return None

        # 7: the audit log's sealed digests (all of them, or those sealed since the oldest checkpoint).
        for violation in seals_verify(since=self._oldest_checkpoint(checkpoints) if self.incremental else None):
            report.add(violation)

        if report.ok and record_checkpoints:
            self._record_checkpoints(snapshot_at)
        report.seconds = time.monotonic() - self.started
        return report

    def _load_accounts(self) -> None:
        report = self.report
        system_user_ids = {u["_id"] for u in collection(User).find({"is_system": True}, {"_id": 1})}
        fields = {"balance": 1, "ledger_seq": 1, "user_id": 1, "created_at": 1, "ledger_head": 1}
        for a in collection(Account).find({}, fields):
            self.accounts[a["_id"]] = a
        report.accounts = len(self.accounts)
        report.total_balance = sum(int(a.get("balance", 0)) for a in self.accounts.values())
        if report.total_balance != 0:
            report.add(f"money not conserved: balances sum to {report.total_balance} paise, expected 0")
        for account_id, account in self.accounts.items():
            if account["user_id"] not in system_user_ids and account.get("balance", 0) < 0:
                report.add(f"account {account_id} is negative: {account['balance']} paise")

    @staticmethod
    def _oldest_checkpoint(checkpoints: dict) -> datetime | None:
        return aware(min(cp["verified_at"] for cp in checkpoints.values())) if checkpoints else None

    def _load_checkpoints(self) -> dict[ObjectId, dict]:
        return {cp["account_id"]: cp for cp in collection(ReconcileCheckpoint).find({})}

    # --- 4 and 5: each account's chain, in bounded seq ranges ------------------------------------

    def _walk_ledger(self) -> None:
        total = sum(
            max(0, int(a.get("ledger_seq", 0)) - (self.start[i] or (0, 0))[0]) for i, a in self.accounts.items()
        )
        for account_id in sorted(self.accounts):
            self._walk_account(account_id, total)

    def _walk_account(self, account_id: ObjectId, total: int) -> None:
        """One query per SEQ_CHUNK entries. The first range also reads the checkpoint's own entry
        (the anchor); the last is open above, to see entries past ledger_seq (normally none, so
        that costs nothing), with a limit that keeps it one chunk."""
        ledger_seq = int(self.accounts[account_id].get("ledger_seq", 0))
        start = self.start[account_id]
        lo, balance = start or (0, 0)
        self.running[account_id] = (lo, balance)
        anchor = None
        if start is not None:
            if ledger_seq < lo:
                self.report.add(f"account {account_id}: ledger_seq {ledger_seq} is behind its checkpoint seq {lo}")
            anchor = (lo, balance) if lo > 0 else None
        open_below = start is None  # the whole chain: seq 0 or below would be a violation too
        while True:
            last = lo + self.seq_chunk >= ledger_seq
            bounds: dict = {} if open_below else {"$gte" if anchor else "$gt": lo}
            if not last:
                bounds["$lte"] = lo + self.seq_chunk
            cursor = self._entries(account_id, bounds)
            if last:
                limit = self.seq_chunk + max(0, ledger_seq - lo) + (1 if anchor else 0)
                cursor = cursor.limit(limit)
            read, last_seq = self._check_chunk(account_id, cursor, total, anchor=anchor)
            if anchor:
                self._check_anchor(account_id, anchor, found=read.get("anchor"))
            open_below, anchor = False, None
            if last and read["rows"] < limit:
                return
            lo = last_seq if last else lo + self.seq_chunk

    def _entries(self, account_id: ObjectId, seq_bounds: dict):
        query = {"account_id": account_id, "seq": seq_bounds} if seq_bounds else {"account_id": account_id}
        return self.entries.find(query, ENTRY_FIELDS).sort("seq", 1)

    def _check_anchor(self, account_id: ObjectId, anchor: tuple[int, int], *, found: dict | None) -> None:
        seq, balance = anchor
        if found is None:
            self.report.add(f"account {account_id}: checkpointed entry seq {seq} is missing")
        elif found["balance_after"] != balance:
            self.report.add(
                f"account {account_id}: checkpointed entry seq {seq} balance_after {found['balance_after']} "
                f"!= checkpoint {balance}"
            )
        elif found.get("hash") != self.checkpoint_hash[account_id] or entry_hash(
            found, found.get("prev_hash", "")
        ) != found.get("hash"):
            self.report.add(f"account {account_id}: checkpointed entry seq {seq} was changed after it was verified")

    def _check_chunk(self, account_id: ObjectId, entries, total: int, *, anchor=None) -> tuple[dict, int | None]:
        chunk, read, last_seq = [], {"rows": 0}, None
        for entry in entries:
            read["rows"] += 1
            last_seq = entry["seq"]
            if anchor and entry["seq"] == anchor[0]:
                read["anchor"] = entry  # verified last time: its balance_after and hash are compared
                continue
            chunk.append(entry)
            self.report.entries += 1
            self._check_sequence(entry)
        if not chunk:
            return read, last_seq
        if self.joins:
            self._check_transactions_of(account_id, chunk)
        else:
            for e in chunk:
                self.entry_prints += _fingerprint(e["transaction_id"], e["type"], e["account_id"], e["amount"])
        if self.progress:
            self.progress("entries", self.report.entries, total, time.monotonic() - self.started)
        return read, last_seq

    def _check_sequence(self, entry: dict) -> None:
        report = self.report
        account_id = entry["account_id"]
        seq, balance = self.running[account_id]
        signed = entry["amount"] if entry["type"] == EntryType.CREDIT else -entry["amount"]
        if entry["amount"] <= 0:
            report.add(f"entry {entry['_id']}: non-positive amount {entry['amount']}")
        if entry["seq"] != seq + 1:
            report.add(f"account {account_id}: ledger seq jumps from {seq} to {entry['seq']}")
        if entry["balance_after"] != balance + signed:
            report.add(
                f"account {account_id}: entry {entry['_id']} balance_after {entry['balance_after']} "
                f"!= {balance} {'+' if signed > 0 else '-'} {abs(signed)}"
            )
        self.running[account_id] = (entry["seq"], balance + signed)
        self._check_link(entry, after_seq=seq)
        at, before = entry.get("created_at"), self.last_at.get(account_id)
        if at is not None and before is not None and at < before:
            report.add(
                f"account {account_id}: entry seq {entry['seq']} is stamped {at} < {before}, before the one it follows"
            )
        if at is not None:
            self.last_at[account_id] = at

    def _check_link(self, entry: dict, *, after_seq: int) -> None:
        """6: the entry's own hash, and its link to the entry walked before it."""
        account_id, seq = entry["account_id"], entry["seq"]
        stored, prev = entry.get("hash") or "", entry.get("prev_hash")
        if not stored:
            self.report.add(f"account {account_id}: entry seq {seq} carries no hash")
        elif entry_hash(entry, prev or "") != stored:
            self.report.add(
                f"account {account_id}: entry seq {seq} does not match its hash (changed after it was written)"
            )
        if prev != self.heads[account_id]:
            self.report.add(
                f"account {account_id}: entry seq {seq} does not chain from seq {after_seq} "
                "(an entry before it was changed, removed or moved)"
            )
        self.heads[account_id] = stored

    # --- 3: transactions against their entries ---------------------------------------------------

    def _walked(self, entry: dict) -> bool:
        """Whether this run's chain walk reads `entry` (so the transaction is checked from there)."""
        if entry["account_id"] not in self.start:
            return False
        start = self.start[entry["account_id"]]
        return start is None or entry["seq"] > start[0]

    def _check_transactions_of(self, account_id: ObjectId, chunk: list[dict]) -> None:
        """Check the transactions behind a chunk's entries, each once in the whole run: from the
        walked entry with the smallest (account, seq)."""
        in_chunk = {(e["account_id"], e["seq"]) for e in chunk}
        txn_ids = list({e["transaction_id"] for e in chunk})
        txns = {t["_id"]: t for t in self.transactions.find({"_id": {"$in": txn_ids}}, TXN_FIELDS)}
        for t in txns.values():
            at = t.get("created_at")
            if isinstance(at, datetime) and (self.earliest_txn_at is None or aware(at) < self.earliest_txn_at):
                self.earliest_txn_at = aware(at)
        by_txn = self._entries_of(txn_ids)
        for tid in txn_ids:
            entries = by_txn.get(tid, [])
            owner = min(((e["account_id"], e["seq"]) for e in entries if self._walked(e)), default=None)
            if owner is None or owner not in in_chunk:
                continue
            txn = txns.get(tid)
            if txn is not None:
                if self.incremental:
                    self.report.count(txn["status"])
                if txn["status"] == TransactionStatus.COMPLETED:
                    self.completed_checked += 1
            self._check_transaction(tid, txn, entries)

    def _entries_of(self, txn_ids: list) -> dict:
        by_txn: dict = defaultdict(list)
        for e in self.entries.find({"transaction_id": {"$in": txn_ids}}, ENTRY_FIELDS):
            by_txn[e["transaction_id"]].append(e)
        return by_txn

    def _check_transaction(self, txn_id, txn: dict | None, entries: list[dict]) -> None:
        if txn is None:
            self.report.add(f"{len(entries)} ledger entries for unknown transaction {txn_id}")
        elif txn["status"] == TransactionStatus.COMPLETED:
            debits = [e for e in entries if e["type"] == EntryType.DEBIT]
            credits = [e for e in entries if e["type"] == EntryType.CREDIT]
            if not (
                len(entries) == 2
                and len(debits) == 1
                and len(credits) == 1
                and debits[0]["account_id"] == txn["from_account_id"]
                and credits[0]["account_id"] == txn["to_account_id"]
                and debits[0]["amount"] == txn["amount"] == credits[0]["amount"]
            ):
                self.report.add(f"COMPLETED transaction {txn_id} has entries {[_describe(e) for e in entries]}")
        elif entries:
            self.report.add(f"{txn['status']} transaction {txn_id} has {len(entries)} ledger entries")

    def _check_all_transactions(self, snapshot_at: datetime) -> bool | None:
        """Count every transaction; check those no walked entry led to (a COMPLETED one with no
        entry at all, or one whose entries sit only on unknown accounts). Without joins, only
        compare the fingerprints: False when they differ."""
        completed = 0
        for batch in self._all_transaction_batches(snapshot_at):
            for t in batch:
                self.report.count(t["status"])
                if t["status"] == TransactionStatus.COMPLETED:
                    completed += 1
                    if not self.joins:
                        tid, amount = t["_id"], t["amount"]
                        self.expected_prints += _fingerprint(tid, EntryType.DEBIT, t["from_account_id"], amount)
                        self.expected_prints += _fingerprint(tid, EntryType.CREDIT, t["to_account_id"], amount)
            self._tick("transactions")
        if not self.joins:
            return (self.entry_prints - self.expected_prints) % _MOD == 0 and not self.unknown_account_entries
        if completed < self.completed_checked:
            self.report.add(
                f"{self.completed_checked - completed} COMPLETED transaction(s) behind ledger entries "
                "have no valid created_at (not found by time)"
            )
        if completed == self.completed_checked and not self.unknown_account_entries:
            return None  # every COMPLETED transaction was checked from its entries, and nothing is left
        for batch in self._all_transaction_batches(snapshot_at):
            self._check_unwalked(batch, count=False)
        return None

    def _check_recent_transactions(self, since: datetime, snapshot_at: datetime) -> bool | None:
        """Incremental: every transaction created since `since`. With joins, those a new entry did
        not lead to. Without, all of them, each against its entries (fetched by one range of
        `transaction_id` per batch); False when the new entries are not exactly the walked entries
        of these transactions (one points at an older or unknown transaction: join to find it)."""
        matched = 0
        for batch in self._window_batches(since, snapshot_at + CHECKPOINT_MARGIN):
            if self.joins:
                self._check_unwalked(batch, count=True)
            else:
                by_txn = self._entries_of_batch(batch)
                for t in batch:
                    entries = by_txn.get(t["_id"], [])
                    for e in entries:
                        if self._walked(e):
                            matched += _fingerprint(e["transaction_id"], e["type"], e["account_id"], e["amount"])
                    self.report.count(t["status"])
                    self._check_transaction(t["_id"], t, entries)
            self._tick("transactions")
        if not self.joins:
            return (self.entry_prints - matched) % _MOD == 0
        return None

    def _entries_of_batch(self, batch: list[dict]) -> dict:
        """The entries of a window's transactions. Their `_id`s were made at the same instants as
        their `created_at`, so one `transaction_id` range covers them (a point lookup per id is
        what costs on the embedded server); a batch whose ids spread wider is looked up by id."""
        ids = sorted(t["_id"] for t in batch)
        created = [aware(t["created_at"]) for t in batch if isinstance(t.get("created_at"), datetime)]
        id_span = ids[-1].generation_time - ids[0].generation_time
        if not created or id_span > max(created) - min(created) + timedelta(seconds=5):
            return self._entries_of(ids)
        wanted, by_txn = set(ids), defaultdict(list)
        for e in self.entries.find({"transaction_id": {"$gte": ids[0], "$lte": ids[-1]}}, ENTRY_FIELDS):
            if e["transaction_id"] in wanted:
                by_txn[e["transaction_id"]].append(e)
        return by_txn

    def _check_unwalked(self, batch: list[dict], *, count: bool) -> None:
        by_txn = self._entries_of([t["_id"] for t in batch])
        for t in batch:
            entries = by_txn.get(t["_id"], [])
            if any(self._walked(e) for e in entries):
                continue  # checked (and counted) from the chain walk
            if count:
                self.report.count(t["status"])
            self._check_transaction(t["_id"], t, entries)

    def _all_transaction_batches(self, snapshot_at: datetime) -> Iterator[list[dict]]:
        """Every transaction, in `created_at` windows (index txn_created_id). The windows start at
        the earliest instant the bank knows of; what lies before or after them is read as one
        range, normally empty, so cheap."""
        candidates = [
            aware(a["created_at"]) for a in self.accounts.values() if isinstance(a.get("created_at"), datetime)
        ]
        candidates += [a.generation_time for a in self.accounts]
        if self.earliest_txn_at is not None:
            candidates.append(self.earliest_txn_at)
        first = min(candidates) - timedelta(seconds=1) if candidates else snapshot_at
        yield from self._batches({"created_at": {"$lt": first}})
        yield from self._window_batches(first, snapshot_at + timedelta(days=1))

    def _window_batches(self, start: datetime, stop: datetime) -> Iterator[list[dict]]:
        """Batches of the transactions created in [start, ∞), read in windows bounded at both ends
        (a query costs its whole index range on the embedded server, whatever its limit) whose span
        adapts to hold about WINDOW_TARGET rows; the last one, past `stop`, is open."""
        span, lower = MIN_WINDOW, start
        while lower < stop:
            upper = min(lower + span, stop)
            found = 0
            for batch in self._batches({"created_at": {"$gte": lower, "$lt": upper}}):
                found += len(batch)
                yield batch
            factor = 2.0 if found == 0 else min(2.0, max(0.125, WINDOW_TARGET / found))
            span = min(max(span * factor, MIN_WINDOW), MAX_WINDOW)
            lower = upper
        yield from self._batches({"created_at": {"$gte": stop}})

    def _batches(self, query: dict) -> Iterator[list[dict]]:
        # No `hint`: on the embedded server a hinted query walks the whole index.
        batch: list[dict] = []
        for t in self.transactions.find(query, TXN_FIELDS).batch_size(self.txn_batch):
            batch.append(t)
            if len(batch) >= self.txn_batch:
                yield batch
                batch = []
        if batch:
            yield batch

    # --- entries of accounts that do not exist ---------------------------------------------------

    def _find_unknown_accounts(self) -> None:
        """Probe the (account, seq) index between consecutive known accounts: each gap is
        normally empty, so this costs one cheap query per account, never a scan."""
        known = sorted(self.accounts)
        for lower, upper in zip([None, *known], [*known, None], strict=True):
            while True:
                bounds: dict = {} if known else {"$exists": True}
                if lower is not None:
                    bounds["$gt"] = lower
                if upper is not None:
                    bounds["$lt"] = upper
                found = self.entries.find_one({"account_id": bounds}, {"account_id": 1}, sort=ACCOUNT_SEQ_ORDER)
                if found is None:
                    break
                self.unknown_account_entries = True
                self.report.add(f"ledger entries for unknown account {found['account_id']}")
                lower = found["account_id"]

    # --- checkpoints ---------------------------------------------------------------------------

    def _record_checkpoints(self, verified_at: datetime) -> None:
        writes = [
            UpdateOne(
                {"account_id": account_id},
                {
                    "$set": {
                        "seq": Int64(seq),
                        "balance_after": Int64(balance),
                        "hash": self.heads.get(account_id, GENESIS),
                        "verified_at": verified_at,
                    }
                },
                upsert=True,
            )
            for account_id, (seq, balance) in self.running.items()
        ]
        for i in range(0, len(writes), 1_000):
            collection(ReconcileCheckpoint).bulk_write(writes[i : i + 1_000], ordered=False)
        self.report.checkpoints_written = len(writes)

    def _tick(self, phase: str) -> None:
        if self.progress:
            self.progress(phase, self.report.transactions, None, time.monotonic() - self.started)


_MOD = 1 << 64


def _fingerprint(txn_id, entry_type, account_id, amount) -> int:
    """A 64-bit hash of one (transaction, side, account, amount) posting: sums of these are equal
    for two multisets of postings (mod 2^64) only if the multisets are, bar a 2^-64 collision."""
    key = f"{txn_id}|{entry_type}|{account_id}|{int(amount)}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def _describe(entry: dict) -> str:
    return f"{entry['type']} {entry['amount']} on {entry['account_id']}"
