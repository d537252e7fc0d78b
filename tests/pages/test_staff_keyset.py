"""Staff listings paged by keyset cursors, on the real embedded server: the transactions listing
(each filter), users and parked events walk both ways without losing or repeating a row, bad
cursors fall back to the first page, and every read examines about one page of documents."""

import random
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from bson import ObjectId

from accounts.models import Account, User
from aegis.keyset import MAX_WALKED_PAGE
from aegis.mongo import collection, get_db
from events.models import OutboxEvent
from tests.factories import make_account, make_user
from tests.pages.conftest import client_for
from tests.query_plans import examined, recorded, recording_queries
from transfers.models import Transaction

NOW = datetime.now(UTC).replace(microsecond=0)
FILTERS = ["none", "status", "account", "account+status"]


def bulk_bank(bank, *, transfers: int, accounts: int = 12, days: int = 30, failed: float = 0.1, seed: int = 3) -> dict:
    """Accounts and `transfers` consistent transaction documents, bulk-inserted (fast).

    One heavy account is on about a quarter of them; some share one
    millisecond (only `_id` orders those); a `failed` share is FAILED. The accounts are older
    than every transfer.
    """
    rng = random.Random(seed)
    opened = NOW - timedelta(days=days + 2)
    accts = [make_account(user=make_user(), created_at=opened) for _ in range(accounts)]
    heavy = accts[0]
    docs = []
    tie = NOW - timedelta(days=days // 2)
    for i in range(transfers):
        if i % 4 == 0:
            pair = (heavy, rng.choice(accts[1:])) if i % 8 == 0 else (rng.choice(accts[1:]), heavy)
        else:
            pair = tuple(rng.sample(accts[1:], 2))
        moment = tie if i % 50 == 0 else NOW - timedelta(seconds=rng.randrange(days * 86_400))
        is_failed = rng.random() < failed
        docs.append(
            {
                "_id": ObjectId(),
                "from_account_id": pair[0].pk,
                "to_account_id": pair[1].pk,
                "amount": rng.randrange(100, 100_000),
                "currency": "INR",
                "note": "",
                "kind": "TRANSFER",
                "status": "FAILED" if is_failed else "COMPLETED",
                "retry_count": 1 if is_failed else 0,
                "failure_reason": "Insufficient funds in the sending account." if is_failed else "",
                "failure_code": "insufficient_funds" if is_failed else "",
                "idempotency_key": f"bulk-{i}",
                "fingerprint": "x",
                "attempt_id": "",
                "lease_expires_at": None,
                "initiated_by": "",
                "created_at": moment,
                "updated_at": moment,
                "completed_at": None if is_failed else moment,
            }
        )
    if docs:
        collection(Transaction).insert_many(docs)
    for account in accts:  # its entry count, as postings keep it (the listing's first guess)
        posted = sum(
            1 for d in docs if d["status"] == "COMPLETED" and account.pk in (d["from_account_id"], d["to_account_id"])
        )
        Account.objects.filter(pk=account.pk).update(ledger_seq=posted)
    return {"accounts": accts, "heavy": heavy, "docs": docs}


def expected_ids(docs, *, status=None, account=None) -> list[str]:
    rows = [
        d
        for d in docs
        if (status is None or d["status"] == status)
        and (account is None or account in (d["from_account_id"], d["to_account_id"]))
    ]
    rows.sort(key=lambda d: (d["created_at"], d["_id"]), reverse=True)
    return [str(d["_id"]) for d in rows]


def filter_params(name: str, heavy) -> dict:
    return {
        "none": {},
        "status": {"status": "FAILED"},
        "account": {"account": str(heavy.pk)},
        "account+status": {"account": str(heavy.pk), "status": "FAILED"},
    }[name]


ROW = re.compile(r'href="/staff/transactions/([0-9a-f]{24})')
OLDER = re.compile(r'rel="next" href="\?([^"]+)"')
NEWER = re.compile(r'rel="prev" href="\?([^"]+)"')


def _page(client, url, query: str):
    html = client.get(f"{url}?{query}").content.decode()
    older, newer = OLDER.search(html), NEWER.search(html)
    return (
        ROW.findall(html),
        unescape(older.group(1)) if older else None,
        unescape(newer.group(1)) if newer else None,
        html,
    )


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fixtures only


@pytest.fixture
def staff_client(staff):
    return client_for(staff)


@pytest.mark.parametrize("name", FILTERS)
def test_staff_transactions_walk_older_then_newer_with_each_filter(staff_client, bank, name):
    built = bulk_bank(bank, transfers=900, failed=0.2)
    params = filter_params(name, built["heavy"])
    status, account = params.get("status"), built["heavy"].pk if "account" in params else None
    base = "&".join(f"{k}={v}" for k, v in params.items())
    expected = expected_ids(built["docs"], status=status, account=account)
    assert len(expected) > 40  # three pages or more whatever the filter

    rows, older, newer, _ = _page(staff_client, "/staff/transactions", base)
    assert newer is None and rows == expected[:20]
    # Rows written while the staff member reads: newer ones stay above, an old one shows up in place.
    late = bulk_rows(built, [NOW + timedelta(seconds=1), NOW - timedelta(days=31)], status=status)
    expected_after = expected_ids(built["docs"] + late, status=status, account=account)
    newest_late = str(late[0]["_id"])

    pages, last_newer = [rows], None
    while older:
        assert "cursor=" in older and base in older  # the filters ride along with the cursor
        rows, older, last_newer, _ = _page(staff_client, "/staff/transactions", older)
        pages.append(rows)
    seen = [r for page in pages for r in page]
    assert newest_late not in seen
    assert seen == [r for r in expected_after if r != newest_late]
    assert all(len(page) == 20 for page in pages[:-1])

    # Back up through Newer: each page is the one shown before it; past the top, the newest now.
    back, newer = [], last_newer
    while newer:
        rows, _, newer, _ = _page(staff_client, "/staff/transactions", newer)
        back.append(rows)
    assert back[:-1] == list(reversed(pages[:-1]))
    assert back[-1] == expected_after[:20]  # the top as it is now, with the late newest row


def bulk_rows(built, moments, *, status=None) -> list[dict]:
    """More transfers of the heavy account (sent), at `moments`, inserted like bulk_bank's."""
    heavy, other = built["heavy"], built["accounts"][1]
    docs = []
    for moment in moments:
        doc = dict(built["docs"][0])
        doc.update(
            _id=ObjectId(),
            from_account_id=heavy.pk,
            to_account_id=other.pk,
            status=status or "COMPLETED",
            created_at=moment,
            updated_at=moment,
            idempotency_key=f"late-{ObjectId()}",
        )
        docs.append(doc)
    collection(Transaction).insert_many(docs)
    return docs


def test_bad_cursors_and_deep_pages_show_the_first_page(staff_client, bank):
    built = bulk_bank(bank, transfers=120)
    heavy = built["heavy"]
    _, older, _, _ = _page(staff_client, "/staff/transactions", "")
    first_all, first_failed = expected_ids(built["docs"])[:20], expected_ids(built["docs"], status="FAILED")[:20]
    cursor = older.split("cursor=")[1]
    tampered = cursor[:-3] + ("aaa" if not cursor.endswith("aaa") else "bbb")
    cases = [
        (f"cursor={tampered}", first_all),
        (f"status=FAILED&cursor={cursor}", first_failed),  # made for another filter
        ("cursor=" + "x" * 900, first_all),
        ("cursor=%00%FF", first_all),
    ]
    for query, first in cases:
        rows, _, _, html = _page(staff_client, "/staff/transactions", query)
        assert rows == first and 'data-testid="cursor-notice"' in html, query
    # A cursor of one account used for another account: refused the same way.
    _, acct_older, _, _ = _page(staff_client, "/staff/transactions", f"account={heavy.pk}")
    other = built["accounts"][1].pk
    rows, _, _, html = _page(staff_client, "/staff/transactions", acct_older.replace(str(heavy.pk), str(other)))
    assert rows == expected_ids(built["docs"], account=other)[:20] and "cursor-notice" in html
    # page=N is walked (clamped to the walkable depth), never a 500.
    assert _page(staff_client, "/staff/transactions", "page=3")[0] == expected_ids(built["docs"])[40:60]
    deep = staff_client.get(f"/staff/transactions?page={MAX_WALKED_PAGE + 500}")
    assert deep.status_code == 200 and ROW.findall(deep.content.decode()) == []
    assert staff_client.get("/staff/users?cursor=nope").status_code == 200
    assert "cursor-notice" in staff_client.get("/staff/events?cursor=nope").content.decode()


USER_ROW = re.compile(r'data-email="([^"]+)"')


def test_staff_users_walk_newest_first_and_search_by_email_prefix(staff_client, staff, bank):
    start = NOW - timedelta(days=20)
    made = [
        make_user(email=f"{'zed' if i % 3 else 'amy'}{i:03d}@example.com", date_joined=start + timedelta(hours=i))
        for i in range(65)
    ]
    # A burst: several people joined in the same instant (only `_id` orders them).
    User.objects.filter(pk__in=[u.pk for u in made[:5]]).update(date_joined=start + timedelta(hours=7))
    people = list(User.objects.filter(is_system=False).order_by("-date_joined", "-id").values_list("email", flat=True))
    emails, query, pages = [], "", 0
    while True:
        html = staff_client.get(f"/staff/users?{query}").content.decode()
        emails += USER_ROW.findall(html)
        pages += 1
        older = OLDER.search(html)
        if not older:
            break
        query = unescape(older.group(1))
    assert emails == people and pages == 4 and staff.email in emails
    assert bank.system_user.email not in emails

    # Search: an email prefix, in email order, paged; never a substring scan.
    amy = sorted(u.email for u in made if u.email.startswith("amy"))
    found, query = [], "q=AMY"
    while query:
        html = staff_client.get(f"/staff/users?{query}").content.decode()
        found += USER_ROW.findall(html)
        older = OLDER.search(html)
        query = unescape(older.group(1)) if older else ""
    assert found == amy
    back = staff_client.get("/staff/users?" + unescape(NEWER.search(html).group(1))).content.decode()
    assert USER_ROW.findall(back) == amy[:20]
    assert "starts with" in staff_client.get("/staff/users?q=nobody").content.decode()


def test_staff_events_page_pages_parked_events(staff_client, bank):
    events = collection(OutboxEvent)
    docs = [
        {
            "_id": ObjectId(),
            "event_type": "transaction.completed",
            "aggregate_id": str(ObjectId()),
            "payload": {},
            "status": "PARKED",
            "attempts": 5,
            "last_error": f"mailer: boom {i}",
            "parked_at": NOW - timedelta(minutes=i),
            "created_at": NOW - timedelta(minutes=i, seconds=30),
        }
        for i in range(120)
    ]
    events.insert_many(docs)
    seen, query = [], ""
    while True:
        html = staff_client.get(f"/staff/events?{query}").content.decode()
        seen += re.findall(r"/staff/events/([0-9a-f]{24})/requeue", html)
        older = OLDER.search(html)
        if not older:
            break
        query = unescape(older.group(1))
    assert seen == [str(d["_id"]) for d in docs]  # newest first, each once


# What these listings read (the page around them, e.g. the unread-notifications badge, is not theirs).
LISTING_COLLECTIONS = {"transactions", "users", "accounts", "outbox_events", "stats_rollups"}


def _reads_of(client, label, url):
    with recording_queries() as record, record(label):
        assert client.get(url).status_code == 200
    db = get_db()
    mine = [r for r in recorded() if (r.command.get("find") or r.command.get("aggregate")) in LISTING_COLLECTIONS]
    return [(item, *examined(db, item)) for item in mine]


# The embedded planner scans the collection when a filter has a field its index lacks: account +
# status ({from_account_id, status, created_at}) has no index holding all three (see the report).
BOUNDED_FILTERS = FILTERS


@pytest.mark.parametrize("name", BOUNDED_FILTERS)
def test_staff_listing_reads_examine_about_a_page(staff, bank, name):
    built = bulk_bank(bank, transfers=3000, days=60)
    client = client_for(staff)
    params = filter_params(name, built["heavy"])
    base = "&".join(f"{k}={v}" for k, v in params.items())
    first = _reads_of(client, "first", f"/staff/transactions?{base}")
    _, older, _, _ = _page(client, "/staff/transactions", base)
    _, older, _, _ = _page(client, "/staff/transactions", older)
    deeper = _reads_of(client, "cursor", f"/staff/transactions?{older}")
    # Status is not in the per-account indexes: with a FAILED filter (~10% of rows) an account's
    # windows hold ~10x the page; everything else reads about one page per side.
    budget = 21 * (14 if name == "account+status" else 4)
    for reads in (first, deeper):
        txn_reads = [r for r in reads if r[0].command.get("find") == "transactions"]
        assert txn_reads
        for item, docs, stages in txn_reads:
            assert "COLLSCAN" not in stages, item.command
            assert docs <= budget, (name, docs, item.command.get("filter"))
        assert sum(docs for _, docs, _ in reads) <= 3 * budget + 50
    # The details of one row: by `_id`, one document.
    detail = _reads_of(client, "detail", f"/staff/transactions/{built['docs'][7]['_id']}")
    assert [docs for item, docs, _ in detail if item.command.get("find") == "transactions"] == [1]


def test_staff_users_and_events_reads_are_bounded(staff, bank):
    User.objects.bulk_create(
        [User(email=f"p{i:04d}@example.com", date_joined=NOW - timedelta(minutes=7 * i)) for i in range(300)]
    )
    client = client_for(staff)
    # A search reads its matches only (an email-prefix range): "p01" is 100 of the 300 people.
    for url, budget in (("/staff/users", 4 * 21), ("/staff/users?q=p01", 100), ("/staff/events", 4 * 21)):
        for item, docs, stages in _reads_of(client, url, url):
            assert "COLLSCAN" not in stages, (url, item.command)
            assert docs <= budget, (url, docs, item.command)
