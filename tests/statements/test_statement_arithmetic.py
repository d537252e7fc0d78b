"""Balance as-of and statement arithmetic against the real server (issue 17).

A statement's figures are as-of reads and an exact seq range of entries, so they must agree for
any period: opening + credits - debits == closing == the balance as-of the end, with entries
exactly on either boundary, before the first entry and after the last.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from bson import Int64, ObjectId

from accounts.models import Account
from aegis.clock import BANK_TZ, bank_day_start_of, parse_instant
from aegis.errors import ValidationFailed
from aegis.mongo import collection
from ledger.models import LedgerEntry
from ledger.reconcile import ledger_reconcile
from ledger.selectors import AS_OF_PROBE, NO_ENTRY, balance_as_of
from statements.selectors import MAX_STATEMENT_DAYS, Period, statement_period, statement_rows, statement_summary
from tests.factories import make_account, make_user
from transfers import exceptions as exc
from transfers.services import transfer_create

MS = timedelta(milliseconds=1)


def send(sender, receiver, paise: int, key: str, note: str = ""):
    time.sleep(0.003)  # each posting in its own millisecond, so a period can start exactly on one
    return transfer_create(
        actor=sender.user, from_account_id=str(sender.pk), to_account_id=str(receiver.pk),
        amount_paise=paise, idempotency_key=key, note=note,
    )  # fmt: skip


def entries_of(account) -> list[dict]:
    return list(collection(LedgerEntry).find({"account_id": account.pk}).sort("seq", 1))


def truth(entries: list[dict], instant: datetime, *, before: bool = False) -> tuple[int, int]:
    """(seq, balance) by walking every entry: what balance_as_of must equal."""
    counted = [e for e in entries if (e["created_at"] < instant if before else e["created_at"] <= instant)]
    return (int(counted[-1]["seq"]), int(counted[-1]["balance_after"])) if counted else (0, 0)


@pytest.fixture
def history(fund):
    """A customer with funding, transfers both ways and a failed attempt (which posts nothing)."""
    alice = make_account(user=make_user(name="Alice Rao"))
    bob = make_account(user=make_user(name="Bob Menon"))
    fund(alice, 100_000)
    send(alice, bob, 25_050, "a1", note="rent")
    send(bob, alice, 5_000, "b1", note='=HYPERLINK("x")')
    with pytest.raises(exc.TransferFailed):
        send(alice, bob, 1_000_000, "a2")  # more than she has: FAILED, no entries
    fund(alice, 1_000)
    send(alice, bob, 10_000, "a3")
    alice.refresh_from_db()
    bob.refresh_from_db()
    return alice, bob


def period_between(start: datetime, end: datetime) -> Period:
    return Period(first_day=start.date(), last_day=end.date(), start=start, end=end)


def check_statement(account, period: Period) -> dict:
    summary = statement_summary(account=account, period=period)
    rows = list(statement_rows(summary))
    credits = sum(r["amount"] for r in rows if r["direction"] == "IN")
    debits = sum(r["amount"] for r in rows if r["direction"] == "OUT")
    assert summary.opening.balance + credits - debits == summary.closing.balance
    assert summary.closing == balance_as_of(account=account, instant=period.end, before=True)
    assert [r["seq"] for r in rows] == list(range(summary.opening.seq + 1, summary.closing.seq + 1))
    assert summary.entries == len(rows)
    assert all(period.start <= r["created_at"] < period.end for r in rows)
    running = summary.opening.balance
    for row in rows:  # each row's running balance follows from the one before
        running += row["amount"] if row["direction"] == "IN" else -row["amount"]
        assert row["balance_after"] == running
    return {"summary": summary, "rows": rows}


def test_as_of_before_the_first_entry_between_entries_on_them_and_after_the_last(history):
    alice, _bob = history
    entries = entries_of(alice)
    assert len(entries) == 5  # two fundings, two sent, one received; the failed attempt posted nothing
    first, last = entries[0]["created_at"], entries[-1]["created_at"]
    assert balance_as_of(account=alice, instant=first - MS) == NO_ENTRY
    assert balance_as_of(account=alice, instant=datetime(2001, 1, 1, tzinfo=UTC)) == NO_ENTRY
    after = balance_as_of(account=alice, instant=last + timedelta(days=400))
    assert (
        (after.seq, after.balance)
        == (alice.ledger_seq, alice.balance)
        == (5, 100_000 - 25_050 + 5_000 + 1_000 - 10_000)
    )
    for entry in entries:
        at = entry["created_at"]
        for instant, before in ((at, False), (at, True), (at - MS, False), (at + MS, True)):
            got = balance_as_of(account=alice, instant=instant, before=before)
            assert (got.seq, got.balance) == truth(entries, instant, before=before), (entry["seq"], instant, before)
    on_first = balance_as_of(account=alice, instant=first)  # "at or before" includes the entry itself
    assert (on_first.seq, on_first.balance, on_first.at) == (1, 100_000, first)


def test_statement_arithmetic_for_every_period_cut_at_entries_and_between_them(history):
    alice, bob = history
    for account in (alice, bob):
        entries = entries_of(account)
        cuts = sorted({e["created_at"] + d for e in entries for d in (-MS, timedelta(0), MS)})
        cuts = [cuts[0] - timedelta(days=1), *cuts, cuts[-1] + timedelta(days=1)]
        for i, start in enumerate(cuts):
            for end in cuts[i:]:
                check_statement(account, period_between(start, end))


def test_an_entry_exactly_on_a_boundary_is_in_the_period_it_starts(history):
    alice, _bob = history
    entries = entries_of(alice)
    second, fourth = entries[1]["created_at"], entries[3]["created_at"]
    assert len({e["created_at"] for e in entries}) == len(entries)  # the fixture spaces its postings
    got = check_statement(alice, period_between(second, fourth))
    # [start, end): the entry stamped `start` is in, the one stamped `end` belongs to the next period.
    assert [r["seq"] for r in got["rows"]] == [2, 3]
    assert got["summary"].opening.balance == entries[0]["balance_after"]
    assert got["summary"].closing.balance == entries[2]["balance_after"]


def test_statement_rows_name_the_counterparty_and_the_funding(history):
    alice, bob = history
    today = datetime.now(BANK_TZ).date()
    summary = statement_summary(account=alice, period=statement_period(today.isoformat(), today.isoformat()))
    rows = list(statement_rows(summary))
    assert [(r["direction"], r["counterparty_name"], r["amount"]) for r in rows] == [
        ("IN", "Aegis funding", 100_000),
        ("OUT", "Bob M.", 25_050),
        ("IN", "Bob M.", 5_000),
        ("IN", "Aegis funding", 1_000),
        ("OUT", "Bob M.", 10_000),
    ]
    assert rows[1]["note"] == "rent" and rows[1]["counterparty_account"] == str(bob.pk)
    assert rows[0]["counterparty_account"] == ""
    staff_rows = list(statement_rows(summary, full_names=True))
    assert staff_rows[1]["counterparty_name"] == "Bob Menon"
    assert summary.holder_name == "Alice Rao" and summary.opening == NO_ENTRY


@pytest.fixture
def long_history():
    """One account with 3,000 entries in bursts and gaps (a bulk-written, consistent chain), so
    the search runs its interpolation and bisection steps on uneven traffic."""
    account = make_account()
    rng = random.Random(17)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    balance, docs = 0, []
    for seq in range(1, 3_001):
        # Mostly milliseconds apart, now and then a quiet day or a month; several in one ms.
        at += rng.choice([timedelta(0), MS, MS * 3, timedelta(seconds=2), timedelta(days=1), timedelta(days=30)])
        credit = balance < 500 or rng.random() < 0.5
        amount = rng.randint(1, 400)
        balance += amount if credit else -amount
        docs.append({
            "account_id": account.pk, "transaction_id": ObjectId(), "type": "CREDIT" if credit else "DEBIT",
            "amount": Int64(amount), "balance_after": Int64(balance), "seq": Int64(seq), "currency": "INR",
            "created_at": at,
        })  # fmt: skip
    collection(LedgerEntry).insert_many(docs)
    collection(Account).update_one(
        {"_id": account.pk}, {"$set": {"balance": Int64(balance), "ledger_seq": Int64(3_000), "ledger_at": at}}
    )
    account.refresh_from_db()
    account.created_at = docs[0]["created_at"] - timedelta(days=1)
    return account, docs


def test_as_of_agrees_with_a_full_walk_on_a_long_uneven_history(long_history):
    account, entries = long_history
    rng = random.Random(5)
    instants = [e["created_at"] for e in rng.sample(entries, 150)]
    instants += [i + MS for i in instants[:50]] + [i - MS for i in instants[:50]]
    instants += [entries[0]["created_at"] - MS, entries[-1]["created_at"], entries[-1]["created_at"] - MS]
    for instant in instants:
        for before in (False, True):
            got = balance_as_of(account=account, instant=instant, before=before)
            assert (got.seq, got.balance) == truth(entries, instant, before=before), (instant, before)


def test_as_of_on_an_account_posted_before_ledger_at_existed(long_history):
    """An account whose newest entry's time is not on the account document (posted by an older
    version) is searched from its newest entries down, with the same answers."""
    account, entries = long_history
    account.ledger_at = None
    for entry in entries[::97] + entries[-AS_OF_PROBE - 2 :]:
        got = balance_as_of(account=account, instant=entry["created_at"])
        assert (got.seq, got.balance) == truth(entries, entry["created_at"])


def test_a_posting_is_never_stamped_before_the_accounts_newest_entry(fund):
    """Another host's clock ran ahead: the next posting on the account is stamped at that time,
    not earlier, so the entries stay in time order and reconcile agrees."""
    alice, bob = make_account(), make_account()
    fund(alice, 10_000)
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=3)
    collection(Account).update_one({"_id": alice.pk}, {"$set": {"ledger_at": ahead}})
    send(alice, bob, 1_000, "k1")
    debit = collection(LedgerEntry).find_one({"account_id": alice.pk, "seq": 2})
    credit = collection(LedgerEntry).find_one({"account_id": bob.pk, "seq": 1})
    assert debit["created_at"] == ahead  # held at the account's newest time
    assert credit["created_at"] < ahead  # the other account's own clock: its chain had nothing later
    report = ledger_reconcile()
    assert report.ok, report.summary()


def test_reconcile_reports_entries_out_of_time_order(fund):
    alice, bob = make_account(), make_account()
    fund(alice, 10_000)
    send(alice, bob, 1_000, "k1")
    first = collection(LedgerEntry).find_one({"account_id": alice.pk, "seq": 1})
    collection(LedgerEntry).update_one(
        {"account_id": alice.pk, "seq": 2}, {"$set": {"created_at": first["created_at"] - timedelta(seconds=1)}}
    )
    report = ledger_reconcile()
    assert not report.ok
    assert any("seq 2 is stamped" in v for v in report.violations), report.summary()


@pytest.mark.parametrize(
    ("first", "last", "field", "words"),
    [
        ("2026-11-31", "2026-12-01", "from", "YYYY-MM-DD"),
        ("01/11/2026", "2026-12-01", "from", "YYYY-MM-DD"),
        ("2026-11-01", "", "to", "YYYY-MM-DD"),
        ("2026-11-10", "2026-11-09", "to", "on or after"),
        ("2025-01-01", "2026-01-02", "to", f"at most {MAX_STATEMENT_DAYS} days"),
        ("2026-11-01", "2026-12-02", "to", "after today"),
        ("1999-12-31", "2000-01-01", "from", "on or after 2000-01-01"),
    ],
)
def test_bad_periods_are_refused_naming_the_field(first, last, field, words):
    with pytest.raises(ValidationFailed) as refused:
        statement_period(first, last, today=date(2026, 12, 1))
    assert refused.value.field == field and words in refused.value.message


def test_a_period_is_whole_ist_days():
    period = statement_period("2025-12-02", "2026-12-01", today=date(2026, 12, 1))  # 365 days: allowed
    assert period.start == datetime(2025, 12, 1, 18, 30, tzinfo=UTC)
    assert period.end == datetime(2026, 12, 1, 18, 30, tzinfo=UTC) == bank_day_start_of(date(2026, 12, 2))
    leap = statement_period("2024-01-01", "2024-12-31", today=date(2026, 12, 1))  # 366 days
    assert (leap.last_day - leap.first_day).days == 365


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("2026-12-01T15:30:00+05:30", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("2026-12-01T15:30", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),  # no offset: IST
        ("2026-12-01", datetime(2026, 12, 1, 18, 29, 59, 999000, tzinfo=UTC)),  # a day: its end, IST
    ],
)
def test_instants_are_read_as_written_or_on_the_banks_clock(text, expected):
    assert parse_instant(text, field="asOf") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "now",
        "2026-13-01",
        "2026-12-01T25:00",
        "2026-W48-2",
        "١٠٢٦-12-01",
        "2026-12-01T10:00:00.1234567Z",
        "9999-12-31",
    ],
)
def test_malformed_instants_are_refused(text):
    with pytest.raises(ValidationFailed) as refused:
        parse_instant(text, field="asOf")
    assert refused.value.field == "asOf"
