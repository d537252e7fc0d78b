"""The searchable customer history (transfers.selectors.account_history with HistoryFilters):
names as the customer may see them, the running balance, each filter, and the scan budget, on
the real embedded server (real transfers for names and balances, bulk histories for walks)."""

from datetime import timedelta

import pytest

from aegis.clock import bank_time
from aegis.errors import AegisError
from aegis.keyset import InvalidCursor
from aegis.mongo import collection, get_db
from ledger.models import LedgerEntry
from payees.services import payee_add
from tests.factories import make_account, make_user
from tests.query_plans import examined, recorded, recording_queries
from tests.transfers.test_history_keyset import bulk_history, visible
from transfers.models import Transaction
from transfers.selectors import (
    HISTORY_SCAN_BUDGET,
    HistoryFilters,
    account_history,
    history_filters_parse,
    history_rows,
)
from transfers.services import transfer_create


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"
    settings.AEGIS_RATELIMIT_NAME_LOOKUP = "100000/1h"


def parse(**query) -> HistoryFilters:
    filters, errors = history_filters_parse(query)
    assert errors == {}
    return filters


def walk(account, filters, nicknames=None, limit=15, max_pages=400):
    """Every row a filtered history shows, following Older (and Search older) to the end."""
    seen, cursor, pages = [], None, 0
    while True:
        page = account_history(account=account, filters=filters, nicknames=nicknames, cursor=cursor, limit=limit)
        seen += [r["_id"] for r in page["rows"]]
        pages += 1
        assert pages < max_pages
        if not page["older"]:
            return seen, pages
        cursor = page["older"]


def send(sender, receiver, paise, key, note=""):
    try:
        transfer_create(
            actor=sender.user,
            from_account_id=str(sender.pk),
            to_account_id=str(receiver.pk),
            amount_paise=paise,
            idempotency_key=key,
            note=note,
        )
    except AegisError:  # a refused transfer is still a FAILED row of the sender's history
        pass


@pytest.fixture
def people(fund):
    alice = make_account(user=make_user(name="Alice Arora"))
    bob = make_account(user=make_user(name="Bob Bhatt"))
    carol = make_account(user=make_user(name="Carol Chawla"))
    fund(alice, 50_000)
    send(alice, bob, 12_000, "k1", note="Rent for November")
    send(bob, alice, 2_500, "k2", note="Chai money")
    send(alice, carol, 1_000_000, "k3", note="Too much")  # FAILED: insufficient funds
    send(alice, carol, 3_000, "k4", note="Books")
    return alice, bob, carol


def rows_of(account, nicknames=None, **query):
    page = account_history(account=account, filters=parse(**query), nicknames=nicknames)
    return history_rows(account=account, docs=page["rows"], nicknames=nicknames)


def test_counterparties_are_named_as_the_customer_may_see_them(people):
    alice, bob, carol = people
    shown = [(r["note"], r["counterparty"], r["is_payee"]) for r in rows_of(alice)]
    assert shown == [
        ("Books", "Carol C.", False),
        ("Too much", "Carol C.", False),
        ("Chai money", "Bob B.", False),
        ("Rent for November", "Bob B.", False),
        ("Initial funds", "Aegis funding", False),
    ]
    payee_add(user=alice.user, account_id=str(bob.pk), nickname="Landlord")
    nicknames = {bob.pk: "Landlord"}
    shown = [(r["counterparty"], r["is_payee"]) for r in rows_of(alice, nicknames)]
    assert shown[2:4] == [("Landlord", True), ("Landlord", True)]
    assert "Alice A." in [r["counterparty"] for r in rows_of(bob)]  # never the full name


def test_running_balance_is_the_viewers_own_balance_after_each_completed_row(people):
    alice, bob, _ = people
    rows = rows_of(alice)
    assert [r["balance_after"] for r in rows] == [37_500, None, 40_500, 38_000, 50_000]
    assert [r["balance_after"] for r in rows_of(bob)] == [9_500, 12_000]
    assert (
        rows[0]["balance_after"]
        == collection(LedgerEntry).find_one({"account_id": alice.pk, "seq": 4})["balance_after"]
    )
    assert [r["attempts"] for r in rows] == [1, 1, 0, 1, 0]  # a failure is one attempt; received rows none


def test_direction_status_and_amount_filters(people):
    alice, _, _ = people
    assert [r["note"] for r in rows_of(alice, direction="IN")] == ["Chai money", "Initial funds"]
    assert [r["note"] for r in rows_of(alice, direction="OUT")] == ["Books", "Too much", "Rent for November"]
    assert [r["note"] for r in rows_of(alice, status="FAILED")] == ["Too much"]
    assert [r["note"] for r in rows_of(alice, status="COMPLETED", direction="IN")] == ["Chai money", "Initial funds"]
    assert [r["note"] for r in rows_of(alice, status="FAILED", direction="IN")] == []
    assert [r["note"] for r in rows_of(alice, min="20", max="120")] == ["Books", "Chai money", "Rent for November"]
    assert [r["note"] for r in rows_of(alice, min="120.00")] == ["Too much", "Rent for November", "Initial funds"]
    assert [r["note"] for r in rows_of(alice, max="25")] == ["Chai money"]


def test_text_search_matches_notes_holder_names_and_nicknames(people):
    alice, bob, _ = people
    assert [r["note"] for r in rows_of(alice, q="rent")] == ["Rent for November"]
    assert [r["note"] for r in rows_of(alice, q="carol c")] == ["Books", "Too much"]
    assert [r["note"] for r in rows_of(alice, q="funding")] == ["Initial funds"]
    assert rows_of(alice, q="Chawla") == []  # the full name is not the customer's to search by
    nicknames = {bob.pk: "Landlord"}
    assert [r["note"] for r in rows_of(alice, nicknames, q="landl")] == ["Chai money", "Rent for November"]


def test_a_date_range_is_ist_days_both_included():
    account = make_account()
    txns = bulk_history(account, [make_account() for _ in range(3)], 400, seed=21)
    days = sorted({bank_time(t["created_at"]).date() for t in txns})
    first, last = days[5], days[9]
    expected = [
        i
        for i in visible(account, txns)
        if first <= bank_time(next(t for t in txns if t["_id"] == i)["created_at"]).date() <= last
    ]
    seen, _ = walk(account, parse(**{"from": first.isoformat(), "to": last.isoformat()}))
    assert seen == expected and len(expected) > 30
    one_day, _ = walk(account, parse(**{"from": days[3].isoformat(), "to": days[3].isoformat()}))
    assert one_day and all(
        bank_time(collection(Transaction).find_one({"_id": i})["created_at"]).date() == days[3] for i in one_day
    )
    before_opening, _ = walk(account, parse(to=(days[0] - timedelta(days=30)).isoformat()))
    assert before_opening == []


def test_filtered_walks_show_every_match_once_in_order():
    account = make_account()
    others = [make_account() for _ in range(3)]
    txns = bulk_history(account, others, 900, seed=22)
    by_id = {t["_id"]: t for t in txns}
    order = visible(account, txns)
    seen, _ = walk(account, parse(q="n1"))
    assert seen == [i for i in order if "n1" in by_id[i]["note"]]
    seen, _ = walk(account, parse(q="n2", direction="OUT"))
    assert seen == [i for i in order if "n2" in by_id[i]["note"] and by_id[i]["from_account_id"] == account.pk]
    seen, _ = walk(account, parse(status="FAILED"))
    assert seen == [i for i in order if by_id[i]["status"] == "FAILED"]
    # And back up: Newer from the last page returns the pages walked, in order.
    first = account_history(account=account, filters=parse(q="n1"))
    second = account_history(account=account, filters=parse(q="n1"), cursor=first["older"])
    back = account_history(account=account, filters=parse(q="n1"), cursor=second["newer"])
    assert [r["_id"] for r in back["rows"]] == [r["_id"] for r in first["rows"]]


def test_a_cursor_is_only_good_for_the_filters_it_was_made_under():
    account = make_account()
    bulk_history(account, [make_account()], 80, seed=23)
    plain = account_history(account=account, limit=10)["older"]
    filtered = account_history(account=account, filters=parse(direction="OUT"), limit=5)["older"]
    with pytest.raises(InvalidCursor):
        account_history(account=account, filters=parse(direction="IN"), cursor=plain)
    with pytest.raises(InvalidCursor):
        account_history(account=account, filters=parse(direction="IN"), cursor=filtered)
    with pytest.raises(InvalidCursor):
        account_history(account=account, cursor=filtered)
    assert account_history(account=account, filters=parse(direction="out"), cursor=filtered)["rows"]


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"from": "yesterday"}, "from", "YYYY-MM-DD"),
        ({"to": "2026-02-30"}, "to", "YYYY-MM-DD"),
        ({"from": "2026-12-02", "to": "2026-12-01"}, "to", "on or after"),
        ({"min": "10.001"}, "min", "Minimum amount"),
        ({"max": "abc"}, "max", "Maximum amount"),
        ({"min": "-5"}, "min", "Minimum amount"),
        ({"min": "0"}, "min", "greater than zero"),
        ({"min": "50", "max": "20"}, "max", "at least the minimum"),
        ({"direction": "SIDEWAYS"}, "direction", "In or Out"),
        ({"status": "LOST"}, "status", "Completed"),
        ({"q": "x" * 61}, "q", "at most 60"),
    ],
)
def test_bad_filter_input_is_named_per_field(query, field, words):
    filters, errors = history_filters_parse(query)
    assert list(errors) == [field] and words in errors[field]
    assert not filters.active  # nothing half-applied


def test_filter_values_are_kept_exactly_paise_never_rounded():
    filters = parse(min="10.5", max="9999.99", q="  rent  ", direction="in", status="completed")
    assert (filters.min_paise, filters.max_paise, filters.text) == (1050, 999_999, "rent")
    assert filters.params() == {"direction": "IN", "status": "COMPLETED", "min": "10.50", "max": "9999.99", "q": "rent"}


# --- bounded: the plan helpers explain every read a filtered request sends ---------------------


@pytest.fixture
def long_history():
    account = make_account()
    others = [make_account(user=make_user(name=f"Other {i}")) for i in range(6)]
    bulk_history(account, others, 4000, seed=24)
    return account


def _reads(label):
    db = get_db()
    costs = [examined(db, item) for item in recorded() if item.label == label]
    for _count, stages in costs:
        assert "COLLSCAN" not in stages, stages
    return [count for count, _ in costs]


def test_amount_and_text_filters_examine_a_bounded_budget_and_say_how_far_back(long_history):
    account = long_history
    with recording_queries() as record:
        with record("first"):
            first = account_history(account=account, filters=parse(q="no such words"))
        with record("older"):
            older = account_history(account=account, filters=parse(q="no such words"), cursor=first["older"])
        with record("amount"):
            account_history(account=account, filters=parse(min="9000"))
        with record("dates"):
            day = bank_time(account.created_at + timedelta(days=10)).date().isoformat()
            dated = account_history(account=account, filters=parse(**{"from": day, "to": day}))
        with record("status"):
            account_history(account=account, filters=parse(status="FAILED", direction="OUT"))
    assert first["rows"] == [] and first["searchedTo"] is not None and first["older"]
    assert older["searchedTo"] < first["searchedTo"]  # Search older went on from where it stopped
    for label in ("first", "older", "amount"):
        costs = _reads(label)
        assert max(costs) <= 120, costs  # one batch (and a window's overshoot) per query
        # The budget counts rows handed over; a window may examine up to about twice as many.
        assert sum(costs) <= 2 * HISTORY_SCAN_BUDGET + 100, (label, costs)
    assert sum(_reads("dates")) <= 250 and dated["rows"]  # a day of ~200 rows: its windows only
    assert max(_reads("status")) <= 120


def test_a_filter_page_with_names_and_balances_stays_bounded(long_history):
    account = long_history
    page = account_history(account=account, filters=parse(direction="IN"))
    with recording_queries() as record:
        with record("rows"):
            rows = history_rows(account=account, docs=page["rows"])
    assert len(rows) == 15 and all(r["balance_after"] is not None for r in rows)
    costs = _reads("rows")
    assert len(costs) == 3 and sum(costs) <= 3 * 15 + 15, costs  # accounts, users, the page's entries
