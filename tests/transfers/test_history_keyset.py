"""Customer history by keyset: the ledger API (seq ranges) and /transactions (two windowed reads
merged), on the real embedded server, with histories bulk-written directly (consistent docs)."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from bson import Int64, ObjectId
from django.test import Client

from accounts.auth import token_issue
from accounts.models import Account
from aegis.keyset import MAX_WALKED_PAGE
from aegis.mongo import collection
from ledger.models import LedgerEntry
from tests.factories import make_account
from transfers.models import Transaction
from transfers.selectors import _history_queries, account_history
from transfers.services import transfer_create

NOW = datetime.now(UTC)


def bulk_history(account, others, n, *, start=None, failed_every=9, seed=5):
    """`n` transfers touching `account` (sent and received, some FAILED), with its ledger rows."""
    rng = random.Random(seed)
    start = start or NOW - timedelta(days=20)
    Account.objects.filter(pk=account.pk).update(created_at=start - timedelta(days=1))
    txns, entries, seq, balance = [], [], int(account.ledger_seq), int(account.balance)
    step = (NOW - timedelta(minutes=10) - start) / n
    for i in range(n):
        other = rng.choice(others)
        sent = rng.random() < 0.5
        failed = i % failed_every == 0
        at = start + step * i + timedelta(milliseconds=rng.randrange(int(step.total_seconds() * 1000) or 1))
        doc = {
            "_id": ObjectId(),
            "from_account_id": account.pk if sent else other.pk,
            "to_account_id": other.pk if sent else account.pk,
            "amount": Int64(100),
            "currency": "INR",
            "note": f"n{i}",
            "kind": "TRANSFER",
            "status": "FAILED" if failed else "COMPLETED",
            "retry_count": 0,
            "failure_reason": "",
            "idempotency_key": f"bulk-{seed}-{i}",
            "initiated_by": "",
            "requested_by": "",
            "created_at": at,
            "updated_at": at,
            "completed_at": None if failed else at,
        }
        txns.append(doc)
        if not failed:
            seq, balance = seq + 1, balance + (-100 if sent else 100)
            entries.append(
                {
                    "account_id": account.pk,
                    "transaction_id": doc["_id"],
                    "type": "DEBIT" if sent else "CREDIT",
                    "amount": Int64(100),
                    "balance_after": Int64(balance),
                    "seq": Int64(seq),
                    "currency": "INR",
                    "created_at": at,
                }
            )
    collection(Transaction).insert_many(txns)
    if entries:
        collection(LedgerEntry).insert_many(entries)
    Account.objects.filter(pk=account.pk).update(ledger_seq=seq, balance=balance)
    account.refresh_from_db()
    return txns


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"


def visible(account, txns):
    """What the history must list, newest first: sent (any status), received and completed."""
    mine = [
        t
        for t in txns
        if t["from_account_id"] == account.pk or (t["to_account_id"] == account.pk and t["status"] == "COMPLETED")
    ]
    return [t["_id"] for t in sorted(mine, key=lambda t: (t["created_at"], t["_id"]), reverse=True)]


def api(user):
    return Client(headers={"Authorization": f"Bearer {token_issue(user=user)}"})


def page_client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def heavy():
    account = make_account()
    others = [make_account() for _ in range(3)]
    txns = bulk_history(account, others, 600)
    return account, others, txns


def test_history_walks_older_then_newer_with_every_row_once(heavy):
    account, others, txns = heavy
    expected = visible(account, txns)
    pages, cursor = [], None
    while True:
        page = account_history(account=account, cursor=cursor, limit=15)
        pages.append(page)
        if not page["older"]:
            break
        cursor = page["older"]
    seen = [r["_id"] for p in pages for r in p["rows"]]
    assert seen == expected
    assert all(len(p["rows"]) == 15 for p in pages[:-1])
    back, page = [], pages[-1]
    while page["newer"]:
        page = account_history(account=account, cursor=page["newer"], limit=15)
        back.append([r["_id"] for r in page["rows"]])
    assert back == [[r["_id"] for r in p["rows"]] for p in reversed(pages[:-1])]


def test_transfers_committing_between_page_reads_never_skip_or_repeat(heavy, fund):
    account, others, txns = heavy
    fund(account, 100_000)
    fund(others[0], 100_000)
    before = visible(account, list(collection(Transaction).find({})))
    seen, cursor, api_seen, api_cursor, turn = [], None, [], None, 0
    client = api(account.user)
    history_done = api_done = False
    while not (history_done and api_done):
        if not history_done:
            page = account_history(account=account, cursor=cursor, limit=15)
            seen += [r["_id"] for r in page["rows"]]
            cursor, history_done = page["older"], not page["older"]
        if not api_done:
            query = {"limit": 15, **({"cursor": api_cursor} if api_cursor else {})}
            body = client.get(f"/api/transactions/{account.pk}", query).json()
            api_seen += [r["_id"] for r in body["transactions"]]
            api_cursor, api_done = body["nextCursor"], not body["nextCursor"]
        turn += 1
        # New transfers both ways land above the walk: they must not shift it.
        sender, receiver = (account, others[0]) if turn % 2 else (others[0], account)
        transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(receiver.pk),
            amount_paise=100,
            idempotency_key=f"mid-walk-{turn}",
        )
    assert seen == before
    assert len(api_seen) == len(set(api_seen))
    assert set(api_seen) == {
        str(e["_id"]) for e in collection(LedgerEntry).find({"account_id": account.pk}) if e["seq"] <= len(api_seen)
    }


def test_api_page_n_is_the_nth_cursor_page_and_totals_are_exact(heavy):
    account, _, _ = heavy
    client = api(account.user)
    cursor, by_cursor = None, []
    for _ in range(6):
        body = client.get(
            f"/api/transactions/{account.pk}", {"limit": 20, **({"cursor": cursor} if cursor else {})}
        ).json()
        by_cursor.append(body)
        cursor = body["nextCursor"]
    for number, expected in enumerate(by_cursor, start=1):
        body = client.get(f"/api/transactions/{account.pk}", {"page": number, "limit": 20}).json()
        assert [r["_id"] for r in body["transactions"]] == [r["_id"] for r in expected["transactions"]]
        assert body["page"] == expected["page"] == number
        assert body["total"] == account.ledger_seq and body["hasNextPage"] is True
    last_page = -(-account.ledger_seq // 20)
    last = client.get(f"/api/transactions/{account.pk}", {"page": last_page, "limit": 20}).json()
    assert last["hasNextPage"] is False and last["nextCursor"] is None
    assert last["transactions"][-1]["balanceAfter"] is not None
    beyond = client.get(f"/api/transactions/{account.pk}", {"page": last_page + 1000, "limit": 20}).json()
    assert beyond["transactions"] == [] and beyond["hasNextPage"] is False


def test_tampered_or_foreign_cursors_are_refused(heavy):
    account, others, _ = heavy
    bulk_history(others[1], [account], 30, seed=9)
    client = api(account.user)
    token = client.get(f"/api/transactions/{account.pk}", {"limit": 5}).json()["nextCursor"]
    for bad in [token[:-3] + "abc", "x" * 40, token + "~"]:
        response = client.get(f"/api/transactions/{account.pk}", {"cursor": bad})
        assert response.status_code == 400
        assert response.json() | {"message": ""} == {"success": False, "message": "", "code": "invalid_cursor"}
    # Another account's cursor (a real one) is not a key to this account's history.
    theirs = api(others[1].user).get(f"/api/transactions/{others[1].pk}", {"limit": 5}).json()["nextCursor"]
    assert api(others[1].user).get(f"/api/transactions/{others[1].pk}", {"cursor": theirs}).status_code == 200
    assert client.get(f"/api/transactions/{account.pk}", {"cursor": theirs}).json()["code"] == "invalid_cursor"

    pages = page_client(account.user)
    older = account_history(account=account)["older"]
    foreign = account_history(account=others[1])["older"]
    first = pages.get("/transactions").content.decode()
    for bad in [older[:-2] + "zz", foreign, "junk", older.replace("~", "")]:
        response = pages.get("/transactions", {"cursor": bad})
        body = response.content.decode()
        assert response.status_code == 200 and 'data-testid="history-notice"' in body
        assert body.count("<tr>") == first.count("<tr>")
    assert pages.get("/transactions", {"cursor": older}, HTTP_HX_REQUEST="true").status_code == 200


def test_deep_page_numbers_on_the_page_are_clamped_never_an_error(heavy):
    account, _, txns = heavy
    pages = page_client(account.user)
    for number in (MAX_WALKED_PAGE + 1, 10**9, "9" * 40):
        response = pages.get("/transactions", {"page": number})
        assert response.status_code == 200
        assert response.context["page"]["rows"]  # the last page there is, not an empty one
    # Old ?page=N links still land where they did: page 3 is the third page of the walk.
    walk, cursor = [], None
    for _ in range(3):
        page = account_history(account=account, cursor=cursor)
        walk.append([r["_id"] for r in page["rows"]])
        cursor = page["older"]
    third = pages.get("/transactions", {"page": 3}).context["page"]["rows"]
    assert [r["id"] for r in third] == [str(i) for i in walk[2]]


def _examined(coll, query, sort=None):
    found = coll.find(query)
    if sort:
        found = found.sort(sort)
    stats = found.explain()
    plan = stats["queryPlanner"]["winningPlan"]
    assert "COLLSCAN" not in str(plan), plan
    return stats["executionStats"]["totalDocsExamined"]


class Recording:
    """The real collection, keeping every filter its finds were given (to explain each one)."""

    def __init__(self, real):
        self.real, self.filters = real, []

    def find(self, query, *args, **kwargs):
        self.filters.append(query)
        return self.real.find(query, *args, **kwargs)


def test_each_history_query_reads_a_page_not_the_history(monkeypatch):
    """Fails on unbounded input: every query the listings issue is explained on a history of
    thousands of rows, and must examine a small multiple of the page, by an index."""
    account = make_account()
    others = [make_account() for _ in range(4)]
    bulk_history(account, others, 4000, seed=11)
    limit = 15
    bound = 5 * (limit + 1)
    import transfers.selectors as selectors

    txns = Recording(collection(Transaction))
    monkeypatch.setattr(selectors, "collection", lambda model: txns)
    first = account_history(account=account, limit=limit)
    deep = first
    for _ in range(30):
        deep = account_history(account=account, cursor=deep["older"], limit=limit)
    account_history(account=account, cursor=deep["newer"], limit=limit)
    assert txns.filters
    for query in txns.filters:
        assert _examined(collection(Transaction), query) <= bound, query
    assert set(_history_queries(account.pk)["sent"]) <= set(txns.filters[0])


def test_each_ledger_query_reads_a_seq_range_by_an_index(monkeypatch):
    account = make_account()
    bulk_history(account, [make_account() for _ in range(4)], 4000, seed=12)
    import ledger.selectors as ledger

    entries = Recording(collection(LedgerEntry))
    monkeypatch.setattr(ledger, "collection", lambda model: entries if model is LedgerEntry else collection(model))
    ledger.entries_for_account(account=account, page=1, limit=20)
    ledger.entries_for_account(account=account, page=150, limit=20)
    ledger.balance_series(account=account, points=60)
    assert len(entries.filters) == 3
    for query in entries.filters:
        assert _examined(collection(LedgerEntry), query) <= 60, query
