"""A statement of 100,000 entries is streamed, not built: the CSV leaves the API a row at a time
and the process's Python memory stays bounded while a client reads all of it.

The account's chain of 100,000 entries is bulk-inserted (each `balance_after` follows from the
one before, so the documents' own chain check runs on every row). To keep the suite fast the
entries point at a few dozen transactions instead of 100,000: what is measured here is the
stream's memory, not the join (the arithmetic tests check the join on real transfers, and
`make bench-statements` times it on a consistent 100k history). tracemalloc counts every Python
allocation of this process (the server is another process): the rows read, joined, formatted
and sent, chunk by chunk. A statement held whole would need far more than the bound: the CSV
text alone is ~10 MB.
"""

from __future__ import annotations

import csv
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from bson import Int64, ObjectId
from django.http import StreamingHttpResponse
from django.test import Client

from accounts.auth import token_issue
from accounts.models import Account
from aegis.clock import bank_time, now_ms
from aegis.money import decimal_rupees
from aegis.mongo import collection
from ledger.models import LedgerEntry
from tests.factories import make_account, make_user
from transfers.models import Transaction

ENTRIES = 100_000
TRANSACTIONS = 40
# What the stream may add to the process's Python memory while it is read whole. Measured: ~2 MB,
# flat from the first row to the last; the CSV text alone is ~10 MB at 100,000 entries, so a
# response that held it (or its rows) would not fit.
PEAK_BOUND = 8 * 1024 * 1024


@pytest.fixture
def long_chain():
    """One account with ENTRIES entries a minute apart, ending an hour ago; emptied fast afterwards
    (dropping and rebuilding the collection's indexes beats deleting 100,000 documents)."""
    holder = make_account(user=make_user(name="Long History"))
    other = make_account(user=make_user(name="Counter Party"))
    end = now_ms() - timedelta(hours=1)
    start = end - timedelta(minutes=ENTRIES)
    txns = []
    for i in range(TRANSACTIONS):
        incoming = i % 2 == 0
        txns.append({
            "_id": ObjectId(), "from_account_id": other.pk if incoming else holder.pk,
            "to_account_id": holder.pk if incoming else other.pk, "amount": Int64(100 if incoming else 50),
            "currency": "INR", "note": f"note {i}", "kind": "TRANSFER", "status": "COMPLETED", "retry_count": 0,
            "idempotency_key": f"long-{i}", "fingerprint": "", "created_at": start, "completed_at": start,
        })  # fmt: skip
    collection(Transaction).insert_many(txns)
    entries = collection(LedgerEntry)
    saved = entries.index_information()
    balance, batch = 0, []
    for seq in range(1, ENTRIES + 1):
        txn = txns[seq % TRANSACTIONS]
        credit = txn["to_account_id"] == holder.pk
        balance += 100 if credit else -50
        batch.append({
            "account_id": holder.pk, "transaction_id": txn["_id"], "type": "CREDIT" if credit else "DEBIT",
            "amount": Int64(100 if credit else 50), "balance_after": Int64(balance), "seq": Int64(seq),
            "currency": "INR", "created_at": start + timedelta(minutes=seq),
        })  # fmt: skip
        if len(batch) == 10_000:
            entries.insert_many(batch)
            batch = []
    collection(Account).update_one(
        {"_id": holder.pk},
        {
            "$set": {
                "balance": Int64(balance),
                "ledger_seq": Int64(ENTRIES),
                "ledger_at": start + timedelta(minutes=ENTRIES),
            }
        },
    )
    yield Account.objects.select_related("user").get(pk=holder.pk), start, balance
    entries.drop()
    for name, spec in saved.items():
        if name == "_id_":
            continue
        options = {k: v for k, v in spec.items() if k not in ("key", "v", "ns")}
        entries.create_index(spec["key"], name=name, **options)


@pytest.mark.slow
def test_a_100k_entry_csv_statement_streams_under_a_memory_bound(long_chain):
    account, start, balance = long_chain
    first_day = bank_time(start).date().isoformat()
    today = bank_time(datetime.now(UTC)).date().isoformat()
    client = Client()
    auth = {"Authorization": f"Bearer {token_issue(user=account.user)}"}
    url = f"/api/accounts/{account.pk}/statement"
    # One short statement first: the first request imports the URLconf and the API's schemas
    # (~11 MB that stay), which is not the stream's memory.
    warm = client.get(url, {"from": first_day, "to": first_day, "format": "csv"}, headers=auth)
    assert warm.status_code == 200
    b"".join(warm.streaming_content)

    tracemalloc.start()
    try:
        response = client.get(url, {"from": first_day, "to": today, "format": "csv"}, headers=auth)
        assert response.status_code == 200, response.content[:300]
        assert isinstance(response, StreamingHttpResponse)
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()  # the request's own set-up is not the stream
        lines, size, last = 0, 0, b""
        for chunk in response.streaming_content:
            lines += 1
            size += len(chunk)
            last = chunk
        _, peak = tracemalloc.get_traced_memory()
        peak -= base
    finally:
        tracemalloc.stop()

    assert lines == ENTRIES + 1  # the header and one line per entry
    row = next(csv.reader([last.decode() if isinstance(last, bytes) else last]))
    assert row[1] == str(ENTRIES)  # the seq of the newest entry
    assert row[-1] == decimal_rupees(balance) == decimal_rupees(account.balance)
    assert peak < PEAK_BOUND, f"peak {peak / 1e6:.1f} MB while streaming"
    assert size > 70 * ENTRIES  # every line was there
