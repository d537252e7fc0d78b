"""The staff transaction list (issue 19): sender and receiver by name and email, date and amount
filters, refusals of bad filter input, and the reads staying bounded (plans on the real server)."""

import re
from datetime import timedelta
from html import unescape

import pytest

from aegis.clock import bank_day_start_of, bank_time
from aegis.mongo import get_db
from tests.factories import make_account, make_user
from tests.pages.conftest import client_for, htmx_client_for
from tests.pages.test_staff_keyset import NOW, bulk_bank
from tests.query_plans import examined, recorded, recording_queries
from transfers.selectors import SEARCH_BUDGET, transactions_search
from transfers.services import system_fund, transfer_create

ROW = re.compile(r'href="/staff/transactions/([0-9a-f]{24})')
SEARCH_OLDER = re.compile(
    r'data-testid="search-older"\s*hx-get="\?([^"]+)"|href="\?([^"]+)" data-testid="search-older"'
)
OLDER = re.compile(r'rel="next" href="\?([^"]+)"')


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _ids(docs, *, since=None, until=None, low=None, high=None, account=None):
    rows = [
        d
        for d in docs
        if (since is None or d["created_at"] >= since)
        and (until is None or d["created_at"] < until)
        and (low is None or d["amount"] >= low)
        and (high is None or d["amount"] <= high)
        and (account is None or account in (d["from_account_id"], d["to_account_id"]))
    ]
    rows.sort(key=lambda d: (d["created_at"], d["_id"]), reverse=True)
    return [str(d["_id"]) for d in rows]


def _walk(client, query: str, link=OLDER) -> list[str]:
    """Every row id of a filtered listing, following its Older (or Search older) links."""
    seen, pages = [], 0
    while query is not None:
        html = client.get(f"/staff/transactions?{query}").content.decode()
        seen += ROW.findall(html)
        found = link.search(html)
        query = unescape(next(g for g in found.groups() if g)) if found else None
        pages += 1
        assert pages < 200
    return seen


def test_rows_name_sender_and_receiver_with_their_emails(staff, bank):
    payer = make_account(user=make_user(email="priya@example.com", name="Priya Sharma"))
    payee = make_account(user=make_user(email="ravi@example.com", name="Ravi Kumar"))
    system_fund(actor=bank.system_user, to_account_id=str(payer.pk), amount_paise=50_000, idempotency_key="f1")
    transfer_create(
        actor=payer.user,
        from_account_id=str(payer.pk),
        to_account_id=str(payee.pk),
        amount_paise=12_345,
        idempotency_key="t1",
    )
    html = client_for(staff).get("/staff/transactions").content.decode()
    assert "Priya Sharma" in html and "priya@example.com" in html
    assert "Ravi Kumar" in html and "ravi@example.com" in html
    assert "Aegis funding" in html  # the funding's sender, never the system user's address
    assert bank.system_user.email not in html
    assert f'href="/staff/users/{payer.user.pk}"' in html  # each name opens the person's page
    assert "₹123.45" in html
    assert 'class="table table-cards"' in html and 'data-label="From"' in html


def test_date_range_lists_the_ist_days_inclusive_and_pages_within_them(staff, bank):
    built = bulk_bank(bank, transfers=600, days=20)
    today = bank_time(NOW).date()
    first, last = today - timedelta(days=12), today - timedelta(days=5)
    since, until = bank_day_start_of(first), bank_day_start_of(last + timedelta(days=1))
    client = client_for(staff)
    query = f"date_from={first.isoformat()}&date_to={last.isoformat()}"
    assert _walk(client, query) == _ids(built["docs"], since=since, until=until)
    # With an account too: both sides merged, inside the days.
    heavy = built["heavy"]
    expected = _ids(built["docs"], since=since, until=until, account=heavy.pk)
    assert expected and _walk(client, f"{query}&account={heavy.pk}") == expected


def test_amount_range_finds_every_match_through_search_older(staff, bank):
    built = bulk_bank(bank, transfers=1200, days=30)
    client = client_for(staff)
    # ₹100.00–₹120.00 of amounts spread over ₹1–₹1,000: about 2% of rows, so pages come back
    # short (the scan budget) and continue through "Search older".
    expected = _ids(built["docs"], low=10_000, high=12_000)
    assert len(expected) > 10
    html = client.get("/staff/transactions?min_amount=100&max_amount=120").content.decode()
    assert 'data-testid="search-budget"' in html and "Searched back to" in html
    assert _walk(client, "min_amount=100&max_amount=120", SEARCH_OLDER) == expected


def test_amount_search_examines_at_most_its_budget_per_request(bank):
    built = bulk_bank(bank, transfers=1200, days=30)
    page = transactions_search(min_amount=10_000, max_amount=12_000)
    assert page["examined"] <= SEARCH_BUDGET
    assert page["searchedTo"] is not None and page["nextCursor"]
    full = transactions_search(min_amount=100)  # almost everything matches: a full page at once
    assert len(full["rows"]) == 20 and full["searchedTo"] is None and full["examined"] <= 25
    assert [str(d["_id"]) for d in full["rows"]] == _ids(built["docs"], low=100)[:20]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("date_from=2026-13-01", "From must be a date written YYYY-MM-DD"),
        ("date_to=yesterday", "To must be a date written YYYY-MM-DD"),
        ("date_from=2026-12-10&date_to=2026-12-01", "To must be on or after From."),
        ("min_amount=10.001", "Min amount must be rupees"),
        ("max_amount=-5", "Max amount must be rupees"),
        ("min_amount=0", "Min amount must be greater than zero."),
        ("min_amount=500&max_amount=100", "Max amount must be at least Min amount."),
        ("min_amount=1e3", "Min amount must be rupees"),
    ],
)
def test_bad_filter_input_is_a_clear_400_with_no_rows(staff, bank, query, message):
    system_fund(actor=bank.system_user, to_account_id=str(make_account().pk), amount_paise=10_000, idempotency_key="x")
    response = client_for(staff).get(f"/staff/transactions?{query}")
    html = response.content.decode()
    assert response.status_code == 400
    assert message in unescape(html)
    assert not ROW.findall(html)
    # htmx swaps only 2xx answers: the same message comes back as a 200 partial.
    partial = htmx_client_for(staff).get(f"/staff/transactions?{query}")
    assert partial.status_code == 200 and message in unescape(partial.content.decode())


def test_a_cursor_of_other_filters_shows_the_first_page_with_a_notice(staff, bank):
    bulk_bank(bank, transfers=600, days=10)  # more rows than one request's budget
    client = client_for(staff)
    html = client.get("/staff/transactions?min_amount=100&max_amount=120").content.decode()
    token = unescape(SEARCH_OLDER.search(html).group(1) or SEARCH_OLDER.search(html).group(2))
    cursor = token.split("cursor=")[1]
    other = client.get(f"/staff/transactions?min_amount=100&max_amount=130&cursor={cursor}")
    assert other.status_code == 200 and 'data-testid="cursor-notice"' in other.content.decode()


# --- bounded: what each request examines, at a few thousand transfers ---------------------------

LISTING_COLLECTIONS = {"transactions", "users", "accounts"}


def _reads_of(client, url):
    with recording_queries() as record, record(url):
        assert client.get(url).status_code == 200
    db = get_db()
    mine = [r for r in recorded() if r.command.get("find") in LISTING_COLLECTIONS]
    return [(item, *examined(db, item)) for item in mine]


@pytest.mark.parametrize(
    "query",
    [
        "date_from={first}&date_to={last}",
        "date_from={first}&date_to={last}&status=FAILED",
        "date_from={first}&date_to={last}&account={heavy}",
        "min_amount=100&max_amount=120",
        "min_amount=100&max_amount=120&date_from={first}",
        "min_amount=100&account={heavy}",
    ],
)
def test_filtered_reads_are_bounded_and_names_cost_two_id_reads(staff, bank, query):
    built = bulk_bank(bank, transfers=3000, days=60)
    today = bank_time(NOW).date()
    url = "/staff/transactions?" + query.format(
        first=(today - timedelta(days=40)).isoformat(),
        last=(today - timedelta(days=10)).isoformat(),
        heavy=built["heavy"].pk,
    )
    reads = _reads_of(client_for(staff), url)
    txn_reads = [r for r in reads if r[0].command["find"] == "transactions"]
    assert txn_reads
    for item, docs, stages in reads:
        assert "COLLSCAN" not in stages, item.command
        assert "hint" not in item.command
        assert docs <= 250, (docs, item.command.get("filter"))
    # The amount search iterates at most its budget; the server examines a little more (each
    # window probe loads its whole range), a constant whatever the history.
    assert sum(docs for _, docs, _ in txn_reads) <= 2 * SEARCH_BUDGET
    # Names: the page's accounts and then their users, each one `_id $in` read.
    name_reads = [r for r in reads if r[0].command["find"] in ("accounts", "users") and "$in" in str(r[0].command)]
    assert [r[0].command["find"] for r in name_reads] == ["accounts", "users"]
    assert all(set(r[0].command["filter"]) == {"_id"} for r in name_reads)
