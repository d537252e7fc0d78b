"""`make bench-scale`: a consistent synthetic bank at several sizes, and how each read grows with it.

For each size N (customer transfers; default 10,000 and 100,000, `--full` adds 1,000,000) a child
process starts its own embedded server (on disk, --sync-on-commit) and Django on it, then:

1. generates the bank by bulk inserts into the app's own collections: 1,000 customers, each with
   an account, funded from the system account (SYSTEM_FUNDING), then N customer transfers over the
   last ~60 days in increasing time, one heavy account on ~10% of them, ~3% FAILED (refused for
   insufficient funds: no ledger entries, retry_count 1). Every COMPLETED transfer gets its DEBIT
   and CREDIT entries with dense per-account `seq` and exact `balance_after`; nobody but the system
   account goes below zero. Optionally notifications for the heavy customer. Audit entries and
   outbox events are not generated (no read measured here lists them);
2. rebuilds the statistics rollups when the app has them (`transfers.rollups.rollups_rebuild`);
3. runs `manage.py reconcile` as a subprocess (time and peak RSS), and measures nothing on a bank
   it does not call OK;
4. times each read in-process with django.test.Client (server-side: no network, no gunicorn),
   once to warm, then `--runs` times: p50 and p90.

The runner speaks both paging styles: it follows `nextCursor` (API) and the Older link (pages)
when they are there, else asks for `page=50`. A list shorter than 50 pages is measured at its
last page, and the cell says which page that was ("p15").

    python -m loadtest.scale [--sizes 10000,100000] [--full] [--runs 5] [--out docs/performance.md]
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import random
import re
import secrets
import signal
import struct
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from loadtest import setup

DEEP_PAGE = 50
EMPTY_MARGIN = 200  # bytes a page with rows has over the same page with none, at least
HISTORY_DAYS = 60
METRICS_TOKEN = secrets.token_urlsafe(24)
TABLE_BEGIN = "<!-- bench-scale:begin -->"
TABLE_END = "<!-- bench-scale:end -->"


# --- the generator ----------------------------------------------------------------------------

_OID_TAIL = os.urandom(5)
_oid_counter = random.randrange(1 << 24)


def _oid_at(moment: datetime):
    """An ObjectId whose embedded time is `moment`, as the server's own ids would be."""
    from bson import ObjectId

    global _oid_counter
    _oid_counter = (_oid_counter + 1) & 0xFFFFFF
    return ObjectId(struct.pack(">I", int(moment.timestamp())) + _OID_TAIL + _oid_counter.to_bytes(3, "big"))


def _ms(moment: datetime) -> datetime:
    # MongoDB keeps milliseconds; truncating here keeps generated rows equal to what reads return.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass
class Book:
    """The generator's running state: every account's balance and ledger seq, and who owns it."""

    system_account: object
    system_user: str
    heavy: object
    light: list
    owners: dict  # account id -> user id (str), as `initiated_by` stores it
    balances: dict = field(default_factory=dict)
    seqs: dict = field(default_factory=dict)
    # Each account's newest entry time: entries are stamped in time order per account, as the
    # engine's `ledger_at` does (a later posting never carries an earlier time).
    stamps: dict = field(default_factory=dict)
    heads: dict = field(default_factory=dict)  # each account's chain head (ledger.chain), as ledger_head
    counts: dict = field(default_factory=lambda: {"transfers": 0, "failed": 0, "heavy": 0, "fundings": 0})

    def reload(self) -> None:
        """Re-read balances, seqs and newest entry times (the engine moved money in between)."""
        from accounts.models import Account
        from aegis.clock import aware
        from aegis.mongo import collection

        for doc in collection(Account).find({}, {"balance": 1, "ledger_seq": 1, "ledger_at": 1, "ledger_head": 1}):
            self.balances[doc["_id"]] = int(doc["balance"])
            self.seqs[doc["_id"]] = int(doc["ledger_seq"])
            self.heads[doc["_id"]] = doc.get("ledger_head") or ""
            if doc.get("ledger_at") is not None:
                newest = aware(doc["ledger_at"])
                self.stamps[doc["_id"]] = max(newest, self.stamps.get(doc["_id"], newest))


class Writer:
    """Buffers documents and inserts them in big unordered batches, one batch in flight while
    the next is built (the server is another process, so building and inserting overlap)."""

    def __init__(self, batch: int):
        from aegis.mongo import collection
        from ledger.models import LedgerEntry
        from transfers.models import Transaction

        self.batch = batch
        self.txns, self.entries = collection(Transaction), collection(LedgerEntry)
        self.pending_txns: list[dict] = []
        self.pending_entries: list[dict] = []
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.inflight = None

    def add(self, txn: dict, entries: tuple[dict, ...]) -> None:
        self.pending_txns.append(txn)
        self.pending_entries.extend(entries)
        if len(self.pending_txns) >= self.batch:
            self.flush()

    def _insert(self, txns: list[dict], entries: list[dict]) -> None:
        if txns:
            self.txns.insert_many(txns, ordered=False)
        if entries:
            self.entries.insert_many(entries, ordered=False)

    def flush(self, *, wait: bool = False) -> None:
        if self.inflight is not None:
            self.inflight.result()
        self.inflight = self.pool.submit(self._insert, self.pending_txns, self.pending_entries)
        self.pending_txns, self.pending_entries = [], []
        if wait:
            self.inflight.result()
            self.inflight = None


def _post(book: Book, writer: Writer, *, sender, receiver, amount: int, kind: str, when: datetime, failed=False):
    """One transfer as the engine would have left it: the settled claim, and its two entries."""
    from bson import Int64

    from ledger.chain import chained
    from ledger.models import EntryType
    from transfers.exceptions import InsufficientFunds
    from transfers.models import TransactionStatus
    from transfers.services import fingerprint

    settled = _ms(when + timedelta(milliseconds=random.randint(8, 60)))
    actor = book.system_user if kind == "SYSTEM_FUNDING" else book.owners[sender]
    txn = {
        "_id": _oid_at(when),
        "from_account_id": sender,
        "to_account_id": receiver,
        "amount": Int64(amount),
        "currency": "INR",
        "note": "Initial funds" if kind == "SYSTEM_FUNDING" else "",
        "kind": kind,
        "status": TransactionStatus.COMPLETED,
        "retry_count": 0,
        "failure_reason": "",
        "failure_code": "",
        "idempotency_key": uuid.uuid4().hex,
        "fingerprint": fingerprint(kind=kind, to_account_id=receiver, amount_paise=amount),
        "attempt_id": uuid.uuid4().hex,
        "lease_expires_at": None,
        "initiated_by": actor,
        "requested_by": actor,
        "created_at": when,
        "updated_at": settled,
        "completed_at": settled,
        "failure_detail": "",
    }
    if failed:  # what _record_failure leaves after an insufficient-funds refusal
        txn.update(
            status=TransactionStatus.FAILED,
            failure_reason=InsufficientFunds.message,
            failure_code=InsufficientFunds.code,
            failure_detail=InsufficientFunds.code,
            retry_count=1,
            completed_at=None,
        )
        writer.add(txn, ())
        return
    entries = []
    for account, entry_type, delta in ((sender, EntryType.DEBIT, -amount), (receiver, EntryType.CREDIT, amount)):
        book.balances[account] += delta
        book.seqs[account] += 1
        stamp = max(settled, book.stamps.get(account, settled))
        book.stamps[account] = stamp
        entry = chained(
            {
                "_id": _oid_at(settled),
                "account_id": account,
                "transaction_id": txn["_id"],
                "type": entry_type,
                "amount": Int64(amount),
                "balance_after": Int64(book.balances[account]),
                "seq": Int64(book.seqs[account]),
                "currency": "INR",
                "created_at": stamp,
            },
            book.heads.get(account),
        )
        book.heads[account] = entry["hash"]
        entries.append(entry)
    writer.add(txn, tuple(entries))


def _customer_transfer(book: Book, writer: Writer, rng: random.Random, when: datetime, *, fail_share: float) -> None:
    from aegis.money import MAX_TRANSFER_PAISE

    if rng.random() < 0.10:
        other = rng.choice(book.light)
        sender, receiver = (book.heavy, other) if rng.random() < 0.5 else (other, book.heavy)
        book.counts["heavy"] += 1
    else:
        sender, receiver = rng.sample(book.light, 2)
    book.counts["transfers"] += 1
    if rng.random() < fail_share:
        book.counts["failed"] += 1
        amount = min(MAX_TRANSFER_PAISE, book.balances[sender] + rng.randint(1, 50_000))
        _post(book, writer, sender=sender, receiver=receiver, amount=amount, kind="TRANSFER", when=when, failed=True)
        return
    amount = rng.randint(100, 50_000)
    if book.balances[sender] < amount:  # nobody may go negative: turn it round, or send less
        if book.balances[receiver] >= amount:
            sender, receiver = receiver, sender
        else:
            amount = book.balances[sender] // 2
    if amount <= 0:
        book.counts["failed"] += 1
        _post(book, writer, sender=sender, receiver=receiver, amount=1, kind="TRANSFER", when=when, failed=True)
        return
    _post(book, writer, sender=sender, receiver=receiver, amount=amount, kind="TRANSFER", when=when)


def _save_accounts(book: Book) -> None:
    from bson import Int64
    from pymongo import UpdateOne

    from accounts.models import Account
    from aegis.mongo import collection

    now = _ms(datetime.now(UTC))
    collection(Account).bulk_write(
        [
            UpdateOne(
                {"_id": account},
                {
                    "$set": {
                        "balance": Int64(book.balances[account]),
                        "ledger_seq": Int64(book.seqs[account]),
                        "ledger_head": book.heads.get(account, ""),
                        "updated_at": now,
                    }
                },
            )
            for account in book.balances
        ],
        ordered=False,
    )


def bank_generate(*, size: int, customers: int, batch: int, seed: int, notifications: int, log) -> Book:
    """Build the bank in the empty, bootstrapped database; returns the generator's state."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import Account, User
    from aegis.mongo import collection
    from notifications.services import notifications_insert

    rng = random.Random(seed)
    random.seed(seed)
    now = datetime.now(UTC)
    start = _ms(now - timedelta(days=HISTORY_DAYS))
    system_user = User.objects.get(is_system=True)
    system_account = Account.objects.get(user=system_user)
    # The bank existed before its first customer.
    collection(User).update_many({}, {"$set": {"date_joined": start - timedelta(hours=1)}})
    collection(Account).update_one({"_id": system_account.pk}, {"$set": {"created_at": start - timedelta(hours=1)}})

    started = time.perf_counter()
    password = make_password("scale-bench-" + secrets.token_urlsafe(12))  # hashed once, shared by all
    onboarding = timedelta(hours=12) / customers
    users = User.objects.bulk_create(
        [
            User(
                email=f"customer{i:05d}@scale.aegis.test",
                name=f"Customer {i}",
                password=password,
                date_joined=start + i * onboarding,
            )
            for i in range(customers)
        ],
        batch_size=1000,
    )
    accounts = Account.objects.bulk_create(
        [Account(user=u, created_at=u.date_joined + timedelta(seconds=1), updated_at=u.date_joined) for u in users],
        batch_size=1000,
    )
    ids = [a.pk for a in accounts]
    log(f"  {customers:,} customers and accounts in {time.perf_counter() - started:.1f}s")
    posting = time.perf_counter()
    book = Book(
        system_account=system_account.pk,
        system_user=str(system_user.pk),
        heavy=ids[0],
        light=ids[1:],
        owners={a.pk: str(a.user_id) for a in accounts},
    )
    book.reload()
    writer = Writer(batch)

    for i, account in enumerate(ids):  # fundings, right after each account opens
        opened = start + i * onboarding + timedelta(seconds=2)
        for k in range(20 if account == book.heavy else 2):
            amount = 1_000_000 if account == book.heavy else rng.randint(500_000, 1_000_000)
            _post(
                book,
                writer,
                sender=book.system_account,
                receiver=account,
                amount=amount,
                kind="SYSTEM_FUNDING",
                when=_ms(opened + timedelta(seconds=k)),
            )
            book.counts["fundings"] += 1

    first = start + timedelta(hours=13)
    step = (now - timedelta(minutes=10) - first) / max(size, 1)
    for n in range(size):
        when = _ms(first + n * step + step * rng.random() * 0.5)
        _customer_transfer(book, writer, rng, when, fail_share=0.03)
        if n and n % 50_000 == 0:
            rate = n / (time.perf_counter() - posting)
            log(f"  generated {n:,} / {size:,} transfers ({rate:,.0f}/s)")
    writer.flush(wait=True)
    _save_accounts(book)
    book.counts["posting_seconds"] = time.perf_counter() - posting

    if notifications:
        heavy_user = next(u for u in users if u.pk == accounts[0].user_id)
        span = (now - first) / notifications
        rows = [
            {
                "user_id": heavy_user.pk,
                "event_id": str(_oid_at(first + k * span)),
                "event_type": "transaction.completed",
                "level": "success",
                "message": f"You received ₹{rng.randint(1, 500)}.00 from account …{rng.randrange(16**6):06x}.",
                "created_at": _ms(first + k * span),
                "read_at": None if k >= notifications - 20 else _ms(first + k * span + timedelta(hours=1)),
            }
            for k in range(notifications)
        ]
        for i in range(0, len(rows), batch):  # through the service: the unread counter counts them
            notifications_insert(rows[i : i + batch], session=None)
    elapsed = time.perf_counter() - started
    total = size + book.counts["fundings"]
    book.counts["seconds"] = elapsed
    # The rate of the posting phase alone (transactions and ledger entries): the rest is fixed.
    book.counts["rate"] = total / book.counts["posting_seconds"]
    log(
        f"  generated {total:,} transfers ({size:,} + {book.counts['fundings']:,} fundings) in {elapsed:.1f}s, "
        f"posting at {book.counts['rate']:,.0f} transfers/s (batch {batch})"
    )
    return book


def bank_extend(book: Book, *, count: int, batch: int, seed: int) -> None:
    """`count` more customer transfers by the same bulk path, after everything already posted."""
    book.reload()
    rng = random.Random(seed)
    writer = Writer(batch)
    first = datetime.now(UTC) - timedelta(seconds=2)
    for n in range(count):
        _customer_transfer(book, writer, rng, _ms(first + timedelta(milliseconds=n)), fail_share=0.03)
    writer.flush(wait=True)
    _save_accounts(book)


def rollups_refresh() -> bool:
    """Rebuild the statistics rollups, when this version of the app has them."""
    try:
        from transfers.rollups import rollups_rebuild
    except ImportError:
        return False
    rollups_rebuild()
    return True


# --- the runner -------------------------------------------------------------------------------


@dataclass
class Row:
    key: str
    label: str
    unit: str = "ms"
    target: str = "read"  # read | transfer | reconcile_time | reconcile_memory | incremental


ROWS = [
    Row("transfer", "transfer through the engine (`transfer_create`)", target="transfer"),
    Row("api_history_1", "GET /api/transactions/<heavy>?limit=20, page 1"),
    Row("api_history_deep", "GET /api/transactions/<heavy>?limit=20, page 50"),
    Row("page_history_1", "GET /transactions (heavy customer), page 1"),
    Row("page_history_deep", "GET /transactions (heavy customer), page 50"),
    Row("dashboard", "GET /dashboard (heavy customer)"),
    Row("staff_list_1", "GET /staff/transactions, page 1"),
    Row("staff_list_deep", "GET /staff/transactions, page 50"),
    Row("staff_failed_1", "GET /staff/transactions?status=FAILED, page 1"),
    Row("staff_failed_deep", "GET /staff/transactions?status=FAILED, page 50"),
    Row("admin_api_1", "GET /api/admin/transactions, page 1"),
    Row("admin_api_deep", "GET /api/admin/transactions, page 50"),
    Row("admin_api_failed_1", "GET /api/admin/transactions?status=FAILED, page 1"),
    Row("admin_api_failed_deep", "GET /api/admin/transactions?status=FAILED, page 50"),
    Row("staff_stats", "GET /staff/stats"),
    Row("metrics", "GET /metrics (scrape)"),
    Row("notifications", "GET /notifications (heavy customer)"),
    Row("reconcile_time", "`manage.py reconcile` (full): time", "s", "reconcile_time"),
    Row("reconcile_memory", "`manage.py reconcile` (full): peak RSS", "MB", "reconcile_memory"),
    Row("reconcile_incremental", "`reconcile --incremental` after 1,000 new transfers (bulk path)", "s", "incremental"),
]


def _with_query(url: str, **params) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params and k not in ("page", "cursor")]
    query += [(k, str(v)) for k, v in params.items()]
    return f"{parts.path}?{urlencode(query)}"


def _get(client, url: str, **headers):
    response = client.get(url, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return response


_OLDER = re.compile(r"""<a\b[^>]*\brel=["']next["'][^>]*>""", re.I)
_HREF = re.compile(r"""\bhref=["']([^"']*)["']""", re.I)


def _older_link(url: str, body: str) -> str | None:
    anchor = _OLDER.search(body)
    href = _HREF.search(anchor.group(0)) if anchor else None
    if not href:
        return None
    target = html.unescape(href.group(1))
    return urlsplit(url).path + target if target.startswith("?") else target


def deep_api_url(client, url: str, headers: dict) -> tuple[str, int]:
    """The URL of the 50th page (or the last, if fewer): by nextCursor when offered, else page=N."""
    body = _get(client, url, **headers).json()
    if "nextCursor" in body:
        depth = 1
        while depth < DEEP_PAGE and body.get("nextCursor"):
            url = _with_query(url, cursor=body["nextCursor"])
            body = _get(client, url, **headers).json()
            depth += 1
        return url, depth
    limit = body.get("limit") or 20
    last = max(1, math.ceil(body["total"] / limit)) if isinstance(body.get("total"), int) else DEEP_PAGE
    depth = min(DEEP_PAGE, last)
    return _with_query(url, page=depth), depth


def deep_page_url(client, url: str) -> tuple[str, int]:
    """The same for a page: follow its Older link, else ask for ?page=N (halving while empty)."""
    body = _get(client, url).content.decode()
    older = _older_link(url, body)
    if older is not None:
        depth = 1
        while depth < DEEP_PAGE and older:
            url = older
            body = _get(client, url).content.decode()
            older = _older_link(url, body)
            depth += 1
        return url, depth
    # Past the end a page still renders, only without rows: it is that much shorter.
    empty = len(_get(client, _with_query(url, page=100_000)).content)
    depth = DEEP_PAGE
    while depth > 1 and len(_get(client, _with_query(url, page=depth)).content) < empty + EMPTY_MARGIN:
        depth //= 2
    return _with_query(url, page=depth), depth


def _timed(work, runs: int) -> list[float]:
    work()  # warm: connections, templates, caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return samples


def _reconcile_run(env: dict, *extra: str) -> tuple[float, float, int, str]:
    """`manage.py reconcile` as a child: (seconds, peak RSS in MB, exit code, last output line)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "reconcile", *extra],
        cwd=setup.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out = proc.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    lines = [line for line in out.splitlines() if line.strip()]
    return elapsed, usage.ru_maxrss / 1024, proc.returncode, (lines[-1] if lines else "")


def _has_incremental() -> bool:
    from ledger.management.commands.reconcile import Command

    return "--incremental" in Command().create_parser("manage.py", "reconcile").format_help()


def _has_checkpoints() -> bool:
    try:
        from ledger.models import ReconcileCheckpoint
    except ImportError:
        return False
    from aegis.mongo import collection

    return collection(ReconcileCheckpoint).find_one({}, {"_id": 1}) is not None


def _exit_on_sigterm() -> None:
    # SIGTERM unwinds like an exception, so the embedded server and child processes are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def measure(spec: dict) -> dict:
    """The child side: one size, from an empty server to its measured row values."""
    _exit_on_sigterm()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    size, runs = spec["size"], spec["runs"]
    env = {**setup.unthrottled_env(), "AEGIS_METRICS_TOKEN": METRICS_TOKEN, "AEGIS_LOG_LEVEL": "ERROR"}
    with setup.embedded_django(tmp_prefix="aegis-scale-", db_name="scale", env=env) as harness:
        from django.test import Client

        from accounts.auth import token_issue
        from accounts.models import Account, User
        from accounts.two_factor import SESSION_VERIFIED
        from aegis.mongo import collection
        from transfers.models import Transaction, TransactionStatus
        from transfers.services import transfer_create

        log(f"size {size:,}: generating ...")
        book = bank_generate(
            size=size,
            customers=spec["customers"],
            batch=spec["batch"],
            seed=spec["seed"],
            notifications=spec["notifications"],
            log=log,
        )
        if spec.get("generate_only"):
            return {"size": size, "generation": dict(book.counts)}
        rollups = rollups_refresh()

        result = {
            "size": size,
            "extra": spec["extra"],
            "rows": {},
            "depth": {},
            "errors": {},
            "generation": dict(book.counts),
        }
        result["generation"]["rollups_rebuilt"] = rollups
        log(f"size {size:,}: full reconcile ...")
        samples = [_reconcile_run(harness.env) for _ in range(spec["reconcile_runs"])]
        verdict = samples[0][3]
        result["reconcile_ok"] = all(code == 0 for _, _, code, _ in samples)
        result["reconcile_verdict"] = verdict
        if not result["reconcile_ok"]:
            log(f"size {size:,}: reconcile is not OK on the generated bank; not measuring: {verdict}")
            return result
        result["rows"]["reconcile_time"] = [s[0] for s in samples]
        result["rows"]["reconcile_memory"] = [s[1] for s in samples]

        # Counted back from the database, each by an index range (none is a scan of the history).
        txns = collection(Transaction)
        total = txns.estimated_document_count()
        fundings = txns.count_documents({"from_account_id": book.system_account})
        heavy_funded = txns.count_documents({"from_account_id": book.system_account, "to_account_id": book.heavy})
        result["bank"] = {
            "transactions": total,
            "fundings": fundings,
            "transfers": total - fundings,
            "failed": txns.count_documents({"status": TransactionStatus.FAILED}),
            "heavy": txns.count_documents({"from_account_id": book.heavy})
            + txns.count_documents({"to_account_id": book.heavy})
            - heavy_funded,
        }

        heavy_account = Account.objects.select_related("user").get(pk=book.heavy)
        heavy = heavy_account.user
        admin = User.objects.filter(role="ADMIN", is_system=False).first()
        customer, staff = Client(), Client()
        customer.force_login(heavy)
        staff.force_login(admin)
        # The staff console owes a second factor after the password (accounts.two_factor); this
        # harness measures the pages behind it, so its session counts as having given the code.
        staff_session = staff.session
        staff_session[SESSION_VERIFIED] = True
        staff_session.save()
        api = Client()
        heavy_auth = {"Authorization": f"Bearer {token_issue(user=heavy)}"}
        admin_auth = {"Authorization": f"Bearer {token_issue(user=admin)}"}
        scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}

        senders = Account.objects.select_related("user").filter(pk__in=book.light[:2])
        one, two = list(senders)

        def transfer():
            transfer_create(
                actor=one.user,
                from_account_id=str(one.pk),
                to_account_id=str(two.pk),
                amount_paise=100,
                idempotency_key=uuid.uuid4().hex,
            )

        work = {"transfer": transfer}

        def api_read(url, headers):
            return lambda: _get(api, url, **headers)

        def page_read(client, url):
            return lambda: _get(client, url)

        history = f"/api/transactions/{book.heavy}?limit=20"
        lists = {
            "api_history": ("api", history, heavy_auth),
            "page_history": ("page", "/transactions", customer),
            "staff_list": ("page", "/staff/transactions", staff),
            "staff_failed": ("page", "/staff/transactions?status=FAILED", staff),
            "admin_api": ("api", "/api/admin/transactions?limit=20", admin_auth),
            "admin_api_failed": ("api", "/api/admin/transactions?status=FAILED&limit=20", admin_auth),
        }
        log(f"size {size:,}: finding the deep pages ...")
        for name, (kind, url, who) in lists.items():
            try:
                if kind == "api":
                    deep, depth = deep_api_url(api, url, who)
                    work[f"{name}_1"], work[f"{name}_deep"] = api_read(url, who), api_read(deep, who)
                else:
                    deep, depth = deep_page_url(who, url)
                    work[f"{name}_1"], work[f"{name}_deep"] = page_read(who, url), page_read(who, deep)
                result["depth"][f"{name}_deep"] = depth
            except Exception as error:  # reported in its cell, the rest still measured
                result["errors"][f"{name}_1"] = result["errors"][f"{name}_deep"] = str(error)
        work["dashboard"] = page_read(customer, "/dashboard")
        work["staff_stats"] = page_read(staff, "/staff/stats")
        work["metrics"] = api_read("/metrics", scraper)
        if spec["notifications"]:
            work["notifications"] = page_read(customer, "/notifications")

        for key, fn in work.items():
            log(f"size {size:,}: {key} ...")
            try:
                result["rows"][key] = _timed(fn, runs)
            except Exception as error:
                result["errors"][key] = str(error)

        if _has_incremental():
            log(f"size {size:,}: incremental reconcile ...")
            if not _has_checkpoints():  # a clean full run records them; else one incremental run does
                result["generation"]["incremental_first_run"] = _reconcile_run(harness.env, "--incremental")[0]
            times = []
            for k in range(spec["reconcile_runs"]):
                bank_extend(book, count=spec["extra"], batch=spec["batch"], seed=spec["seed"] + 1 + k)
                elapsed, _, code, line = _reconcile_run(harness.env, "--incremental")
                if code != 0:
                    result["errors"]["reconcile_incremental"] = f"exit {code}: {line}"
                    break
                times.append(elapsed)
            else:
                result["rows"]["reconcile_incremental"] = times
        else:
            result["errors"]["reconcile_incremental"] = "no --incremental option yet"
        return result


# --- the report -------------------------------------------------------------------------------


def _label(size: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if size >= div and size % (div // 10) == 0:
            text = f"{size / div:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return str(size)


def _scale(row: Row, value: float) -> float:
    return value * 1000 if row.unit == "ms" else value


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _target(row: Row, p50: dict[int, float]) -> tuple[str, str]:
    """The issue's target for a row, and whether the measured figures meet it."""
    sizes = sorted(p50)
    if not sizes:
        return "", "—"
    small, large = sizes[0], sizes[-1]
    growth = p50[large] / p50[small] if p50[small] else float("inf")
    if row.target == "read":
        at = 100_000 if 100_000 in p50 else large
        limit = 1.5 if large > 100_000 else 1.3
        ok = p50[at] <= 150 and (len(sizes) < 2 or growth <= limit)
        return f"≤ 150 ms at {_label(at)}, growth ≤ {limit}×", "pass" if ok else "FAIL"
    if row.target == "transfer":
        return "growth ≤ 1.2×", "pass" if growth <= 1.2 else "FAIL"
    if row.target == "reconcile_memory":
        ok = growth <= 1.2 and p50.get(1_000_000, 0) <= 300
        return "growth ≤ 1.2× (≤ 300 MB at 1M)", "pass" if ok else "FAIL"
    if row.target == "incremental":
        return "≤ 5 s at any size", "pass" if all(v <= 5 for v in p50.values()) else "FAIL"
    return "", "—"


def report_table(results: list[dict]) -> list[str]:
    """The markdown table: one row per measurement, p50 (p90) per size, growth, target, verdict."""
    sizes = [r["size"] for r in results]
    pairs = list(zip(sizes, sizes[1:], strict=False))
    if len(sizes) > 2:
        pairs.append((sizes[0], sizes[-1]))
    head = ["measurement", *[f"{_label(s)} p50 (p90)" for s in sizes]]
    head += [f"growth {_label(a)}→{_label(b)}" for a, b in pairs] + ["target", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in ROWS:
        cells, p50 = [], {}
        for result in results:
            samples = result["rows"].get(row.key)
            if not samples:
                cells.append("n/a" if row.key not in result["errors"] else "error")
                continue
            values = [_scale(row, v) for v in samples]
            p50[result["size"]] = setup.percentile(values, 0.5)
            cell = f"{_fmt(p50[result['size']])} ({_fmt(setup.percentile(values, 0.9))})"
            depth = result["depth"].get(row.key)
            if depth is not None and depth != DEEP_PAGE:
                cell += f" p{depth}"
            cells.append(cell)
        growth = [f"{p50[b] / p50[a]:.2f}×" if a in p50 and b in p50 and p50[a] else "—" for a, b in pairs]
        target, verdict = _target(row, p50)
        label = f"{row.label} [{row.unit}]"
        lines.append("| " + " | ".join([label, *cells, *growth, target, verdict]) + " |")
    return lines


def report_notes(results: list[dict]) -> list[str]:
    lines = []
    for result in results:
        gen = result["generation"]
        bank = result.get("bank", {})
        line = (
            f"- {_label(result['size'])}: generated {gen['transfers'] + gen['fundings']:,} transfers in "
            f"{gen['seconds']:.1f} s, posting at **{gen['rate']:,.0f} transfers/s**; "
            f"reconcile: {result['reconcile_verdict']}"
        )
        if bank:
            line += (
                f"; heavy account on {bank['heavy'] / max(bank['transfers'], 1):.1%} of customer transfers, "
                f"FAILED {bank['failed'] / max(bank['transfers'], 1):.1%} of customer transfers"
            )
        if result.get("extra", 1000) != 1000:
            line += f"; incremental reconcile after {result['extra']:,} new transfers per run"
        lines.append(line)
        lines += [f"  - {key}: {error}" for key, error in sorted(result["errors"].items())]
    return lines


def write_markdown(path: Path, lines: list[str]) -> None:
    """Put the table between the bench markers of `path` (keeping the prose around it)."""
    block = "\n".join([TABLE_BEGIN, *lines, TABLE_END])
    text = path.read_text() if path.exists() else ""
    if TABLE_BEGIN in text and TABLE_END in text:
        before, rest = text.split(TABLE_BEGIN, 1)
        text = before + block + rest.split(TABLE_END, 1)[1]
    else:
        text = (text.rstrip() + "\n\n" if text else "") + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="customer transfers per bank, comma-separated")
    parser.add_argument("--full", action="store_true", help="add a 1,000,000-transfer bank (long)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per read (after one warm-up)")
    parser.add_argument("--reconcile-runs", type=int, default=2)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=5000, help="transfers per bulk insert")
    parser.add_argument("--notifications", type=int, default=3000, help="for the heavy customer (0: none)")
    parser.add_argument("--extra", type=int, default=1000, help="new transfers before each incremental reconcile")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", type=Path, help="also write the table (markdown) into this file")
    parser.add_argument("--json", type=Path, help="also write the raw results as JSON")
    parser.add_argument("--generate-only", action="store_true", help="only build each bank and print the rate")
    parser.add_argument("--size-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size_child:
        return setup.run_child(measure, args.size_child)

    _exit_on_sigterm()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()} | ({1_000_000} if args.full else set()))
    print(
        f"bench-scale: sizes {', '.join(map(_label, sizes))}, {args.runs} runs per read, {args.customers} "
        f"customers, {os.cpu_count()} cores, embedded server on disk (--sync-on-commit)",
        flush=True,
    )
    results = []
    for size in sizes:
        spec = {
            "size": size,
            "runs": args.runs,
            "reconcile_runs": args.reconcile_runs,
            "customers": args.customers,
            "batch": args.batch,
            "notifications": args.notifications,
            "seed": args.seed,
            "extra": args.extra,
            "generate_only": args.generate_only,
        }
        proc = setup.start_child("loadtest.scale", "--size-child", spec, env=dict(os.environ))
        try:
            results.append(setup.child_result(proc, timeout=6 * 3600))
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=120)
    if args.generate_only:
        for r in results:
            gen = r["generation"]
            print(
                f"{_label(r['size'])}: {gen['transfers'] + gen['fundings']:,} transfers in {gen['seconds']:.1f} s, "
                f"posting at {gen['rate']:,.0f} transfers/s"
            )
        return 0
    lines = report_table(results)
    notes = report_notes(results)
    print("\n".join(["", *lines, "", *notes]))
    if args.out:
        write_markdown(args.out, [*lines, "", *notes])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0 if all(r["reconcile_ok"] and not r["errors"].keys() - {"reconcile_incremental"} for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
