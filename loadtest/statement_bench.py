"""`make bench-statements`: statements and balance as-of on one account with a long history.

A fresh embedded server (on disk, --sync-on-commit) and Django on it, then:

1. `generate_history` builds one customer account with 100,000 ledger entries over ~280 days
   by bulk inserts into the app's own collections (loadtest.scale's posting path): fundings from
   the system account, incoming transfers from a few counterparties and outgoing transfers to
   them, with notes; every account's `balance`, `ledger_seq` and `ledger_at` consistent.
   `manage.py reconcile` must call it OK before anything is timed;
2. times, each median and p90 over `--runs` runs (after one warm-up) beside its target and a
   baseline from the same run:
   - a CSV statement of a period holding exactly 10,000 entries, the whole stream consumed
     (statements.documents.statement_response; also the API route when it is wired);
   - the PDF statement of the same period;
   - `ledger.selectors.balance_as_of` at ~200 random instants across the history, each answer
     checked against the ground truth the generator kept; its baseline is the query a newcomer
     would write (created_at <= T, sort created_at desc, limit 1), on a few instants only.

The baselines of the documents are the same rows read and joined without rendering
(`statement_rows` consumed), so the table shows what the formatting itself costs.

    python -m loadtest.statement_bench [--entries 100000] [--runs 5] [--instants 200] [--seed 17]
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from loadtest import setup
from loadtest.scale import Book, Writer, _exit_on_sigterm, _ms, _post, _reconcile_run

# Entries per IST day, Monday first: any four whole weeks hold exactly 10,000 of them, so a
# statement period of exactly 10,000 entries exists wherever the history has 28 full days.
WEEK = (420, 400, 380, 390, 410, 250, 250)
FUNDING_SHARE, INCOMING_SHARE = 0.06, 0.44  # the rest is outgoing (when the balance allows)
COUNTERPARTIES = (
    ("Priya Sharma", "Rent and utilities"),
    ("Rahul Mehta", "Dinner split"),
    ("Ananya Iyer", "Freelance invoice"),
    ("Vikram Nair", "Loan repayment"),
    ("Kavya Reddy", "Groceries"),
)
NOTES = ("", "", "Thanks!", "Monthly share", "Tickets", "Birthday gift", "Refund", "Invoice 2026-114")
HOLDER_NAME = "Asha Verma"


@dataclass
class History:
    """What `generate_history` made, and the ground truth of the holder's account."""

    account_id: object
    user_id: object
    counterparties: list
    times: list[datetime] = field(default_factory=list)  # created_at of seq 1..n (index seq-1)
    balances: list[int] = field(default_factory=list)  # balance_after of seq 1..n
    days: list[tuple[date, int]] = field(default_factory=list)  # (IST day, entries that day)
    counts: dict = field(default_factory=dict)

    def balance_at(self, instant: datetime) -> tuple[int, int]:
        """(seq, balance) of the last holder entry at or before `instant`; (0, 0) before the first."""
        seq = bisect.bisect_right(self.times, instant)
        return seq, (self.balances[seq - 1] if seq else 0)

    def period_with(self, count: int) -> tuple[date, date]:
        """The first run of whole IST days holding exactly `count` entries (ValueError: none)."""
        sums = [0]
        for _day, n in self.days:
            sums.append(sums[-1] + n)
        for i in range(len(self.days)):
            j = bisect.bisect_left(sums, sums[i] + count)
            if j < len(sums) and sums[j] - sums[i] == count:
                return self.days[i][0], self.days[j - 1][0]
        raise ValueError(f"no run of whole days holds exactly {count} entries")


class _HistoryWriter(Writer):
    """scale.Writer that also gives each transfer its note, keeps the holder's ground truth and
    every account's newest entry time (its `ledger_at`)."""

    def __init__(self, batch: int, history: History, rng: random.Random, *, others_ledger: bool):
        super().__init__(batch)
        self.history, self.rng, self.others_ledger = history, rng, others_ledger
        self.latest: dict = {}

    def add(self, txn: dict, entries: tuple[dict, ...]) -> None:
        if txn["kind"] == "TRANSFER":
            txn["note"] = self.rng.choice(NOTES)
        for entry in entries:
            self.latest[entry["account_id"]] = entry["created_at"]
            if entry["account_id"] == self.history.account_id:
                self.history.times.append(entry["created_at"])
                self.history.balances.append(int(entry["balance_after"]))
        if not self.others_ledger:
            entries = tuple(e for e in entries if e["account_id"] == self.history.account_id)
        super().add(txn, entries)


def _day_schedule(entries: int, last_day: date) -> list[tuple[date, int]]:
    """(IST day, entries) oldest first, ending on `last_day`; the oldest day takes the remainder."""
    schedule, left, day = [], entries, last_day
    while left > 0:
        n = min(left, WEEK[day.weekday()])
        schedule.append((day, n))
        left -= n
        day -= timedelta(days=1)
    return schedule[::-1]


def _instants(day: date, count: int, rng: random.Random) -> list[datetime]:
    """`count` strictly increasing request times within the IST day, a whole second apart at
    least, so that each settles (+8 to 60 ms, scale._post) before the next one starts."""
    from aegis.clock import BANK_TZ

    midnight = datetime(day.year, day.month, day.day, tzinfo=BANK_TZ).astimezone(UTC)
    seconds = sorted(rng.sample(range(1, 86_399), count))
    return [_ms(midnight + timedelta(seconds=s, milliseconds=rng.randrange(900))) for s in seconds]


def _save_accounts(book: Book, latest: dict) -> None:
    """scale._save_accounts plus `ledger_at`: the newest entry's time of every account."""
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
                        "ledger_at": latest.get(account),
                        "updated_at": now,
                    }
                },
            )
            for account in book.balances
        ],
        ordered=False,
    )


def generate_history(
    *,
    entries: int,
    counterparties: int = len(COUNTERPARTIES),
    seed: int = 17,
    batch: int = 5000,
    last_day: date | None = None,
    email_domain: str = "statements.aegis.test",
    others_ledger: bool = True,
    log=lambda _message: None,
) -> History:
    """One customer account with exactly `entries` ledger entries, ending on `last_day` (IST;
    default yesterday), in the bootstrapped database (the system user must exist).

    Its created_at rise strictly with seq, so any instant has one right answer (History.balance_at).
    Counterparties are funded up front and never go below zero; the holder neither: an outgoing
    transfer it cannot afford becomes an incoming one. `manage.py reconcile` calls the result OK.

    `others_ledger=False` leaves out the ledger entries of every other account (counterparties,
    system) and their ledger fields: about a third fewer inserts, for a test that reads only the
    holder's account; reconcile does not pass on that.
    """
    from accounts.models import Account, User
    from aegis.clock import BANK_TZ

    rng = random.Random(seed)
    random.seed(seed)  # scale._post draws settlement delays from the module's generator
    if last_day is None:
        last_day = datetime.now(BANK_TZ).date() - timedelta(days=1)
    schedule = _day_schedule(entries, last_day)
    opened = datetime(*schedule[0][0].timetuple()[:3], tzinfo=BANK_TZ).astimezone(UTC) - timedelta(days=1)
    started = time.perf_counter()

    people = [(HOLDER_NAME, "holder")] + [(name, "cp") for name, _ in COUNTERPARTIES[:counterparties]]
    users = []
    for i, (name, role) in enumerate(people):
        user = User(email=f"{role}{i}-{seed}@{email_domain}", name=name, date_joined=opened - timedelta(hours=1))
        user.set_unusable_password()
        users.append(user)
    users = User.objects.bulk_create(users)
    accounts = Account.objects.bulk_create([Account(user=u, created_at=opened, updated_at=opened) for u in users])
    holder, others = accounts[0], accounts[1:]

    system_user = User.objects.get(is_system=True)
    system_account = Account.objects.get(user=system_user)
    book = Book(
        system_account=system_account.pk,
        system_user=str(system_user.pk),
        heavy=holder.pk,
        light=[a.pk for a in others],
        owners={a.pk: str(a.user_id) for a in accounts},
    )
    book.reload()
    history = History(account_id=holder.pk, user_id=users[0].pk, counterparties=[a.pk for a in others])
    history.days = schedule
    writer = _HistoryWriter(batch, history, rng, others_ledger=others_ledger)
    counts = {"fundings": 0, "incoming": 0, "outgoing": 0, "counterparty_fundings": 0}

    def fund(account, when):
        _post(
            book,
            writer,
            sender=book.system_account,
            receiver=account,
            amount=1_000_000,
            kind="SYSTEM_FUNDING",
            when=when,
        )

    for k in range(10):  # the counterparties' savings, before the holder's first entry
        for i, account in enumerate(others):  # a minute apart: the system account's entries stay in order
            fund(account.pk, _ms(opened + timedelta(minutes=k * len(others) + i + 1)))
            counts["counterparty_fundings"] += 1

    for n, (day, count) in enumerate(schedule):
        for when in _instants(day, count, rng):
            roll = rng.random()
            amount = rng.choice((rng.randint(100, 200_000), rng.randint(1, 50) * 10_000))
            if roll >= FUNDING_SHARE + INCOMING_SHARE and book.balances[holder.pk] >= amount:
                _post(
                    book,
                    writer,
                    sender=holder.pk,
                    receiver=rng.choice(others).pk,
                    amount=amount,
                    kind="TRANSFER",
                    when=when,
                )
                counts["outgoing"] += 1
                continue
            sender = rng.choice(others).pk
            if roll < FUNDING_SHARE or book.balances[sender] < amount:
                fund(holder.pk, when)
                counts["fundings"] += 1
            else:
                _post(book, writer, sender=sender, receiver=holder.pk, amount=amount, kind="TRANSFER", when=when)
                counts["incoming"] += 1
        if n and n % 28 == 0:
            log(f"  {len(history.times):,} / {entries:,} entries ({time.perf_counter() - started:.0f}s)")
    writer.flush(wait=True)
    if not others_ledger:
        book.balances = {holder.pk: book.balances[holder.pk]}
    _save_accounts(book, writer.latest)
    assert len(history.times) == entries and book.seqs[holder.pk] == entries
    counts["seconds"] = time.perf_counter() - started
    counts["balance"] = book.balances[holder.pk]
    history.counts = counts
    log(
        f"  {entries:,} entries on one account ({counts['fundings']:,} fundings, {counts['incoming']:,} in, "
        f"{counts['outgoing']:,} out) over {len(schedule)} days in {counts['seconds']:.1f}s"
    )
    return history


# --- the runner -------------------------------------------------------------------------------


@dataclass
class Measured:
    label: str
    samples: list[float]  # seconds
    target: float | None = None  # seconds; the verdict compares the median with it
    baseline: str = ""
    base_samples: list[float] = field(default_factory=list)

    def cells(self) -> list[str]:
        median, p90 = setup.percentile(self.samples, 0.5), setup.percentile(self.samples, 0.9)
        cells = [self.label, _fmt(median), _fmt(p90), f"{len(self.samples)}"]
        cells.append(f"≤ {_fmt(self.target)}" if self.target is not None else "—")
        cells.append(("PASS" if median <= self.target else "MISS") if self.target is not None else "—")
        if self.base_samples:
            base, base90 = setup.percentile(self.base_samples, 0.5), setup.percentile(self.base_samples, 0.9)
            cells.append(f"{self.baseline}: {_fmt(base)} ({_fmt(base90)}), n={len(self.base_samples)}")
        else:
            cells.append(self.baseline or "—")
        return cells


def _fmt(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.{1 if seconds < 0.1 else 0}f} ms"
    return f"{seconds:.2f} s"


def _timed(work, runs: int) -> list[float]:
    work()  # warm: connections, fonts, caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return samples


def _consume(response) -> int:
    """Read a response to its end, as a client would; the number of bytes."""
    if getattr(response, "streaming", False):
        return sum(len(chunk) for chunk in response.streaming_content)
    return len(response.content)


def _naive_as_of(account_id, instant: datetime) -> tuple[int, int]:
    """What a newcomer writes for "the balance at T": the newest entry at or before T by time."""
    from aegis.mongo import collection
    from ledger.models import LedgerEntry

    query = {"account_id": account_id, "created_at": {"$lte": instant}}
    row = next(iter(collection(LedgerEntry).find(query).sort("created_at", -1).limit(1)), None)
    return (int(row["seq"]), int(row["balance_after"])) if row else (0, 0)


def _as_of_instants(history: History, count: int, rng: random.Random) -> list[datetime]:
    """Mostly uniform across the history, plus the edges: before the first entry, exactly on
    entries and a millisecond before them, after the last."""
    first, last = history.times[0], history.times[-1]
    span = (last - first).total_seconds()
    picks = [_ms(first + timedelta(seconds=rng.random() * span)) for _ in range(max(0, count - 8))]
    for seq in (1, len(history.times) // 2, len(history.times)):
        at = history.times[seq - 1]
        picks += [at, at - timedelta(milliseconds=1)]
    picks += [first - timedelta(days=1), last + timedelta(days=1)]
    rng.shuffle(picks)
    return picks


def run(args) -> int:
    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    env = {**setup.unthrottled_env(), "AEGIS_LOG_LEVEL": "ERROR"}
    with setup.embedded_django(tmp_prefix="aegis-statements-", db_name="statements", env=env) as harness:
        from django.test import Client

        from accounts.auth import token_issue
        from accounts.models import Account
        from ledger.selectors import balance_as_of
        from statements.documents import statement_response
        from statements.selectors import statement_period, statement_rows, statement_summary

        log(f"generating {args.entries:,} entries on one account ...")
        history = generate_history(entries=args.entries, seed=args.seed, batch=args.batch, log=log)
        log("reconcile ...")
        seconds, rss, code, verdict = _reconcile_run(harness.env)
        log(f"  {verdict} ({seconds:.1f}s, {rss:.0f} MB)")
        if code != 0:
            print(f"bench-statements: reconcile is not OK on the generated history, nothing measured: {verdict}")
            return 1

        account = Account.objects.select_related("user").get(pk=history.account_id)
        first_day, last_day = history.period_with(args.statement_entries)
        period = statement_period(first_day.isoformat(), last_day.isoformat())
        summary = statement_summary(account=account, period=period)
        opening, closing = (
            history.balance_at(period.start - timedelta(milliseconds=1)),
            history.balance_at(period.end - timedelta(milliseconds=1)),
        )
        if (
            summary.entries != args.statement_entries
            or (summary.opening.seq, summary.opening.balance) != opening
            or (
                summary.closing.seq,
                summary.closing.balance,
            )
            != closing
        ):
            print(f"bench-statements: the statement's summary disagrees with the ground truth: {summary}")
            return 1

        def document(fmt: str):
            def work():
                fresh = statement_summary(account=account, period=period)  # as a request does
                _consume(statement_response(fresh, statement_rows(fresh), fmt))

            return work

        def rows_only():
            fresh = statement_summary(account=account, period=period)
            for _row in statement_rows(fresh):
                pass

        token = token_issue(user=account.user)
        api = Client()
        url = f"/api/accounts/{account.pk}/statement?from={first_day}&to={last_day}&format="

        def api_csv():
            response = api.get(url + "csv", headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}csv answered {response.status_code}: {response.content[:200]!r}")
            _consume(response)

        n = f"{args.statement_entries:,}"
        log("rows only (baseline) ...")
        base = _timed(rows_only, args.runs)
        results = []
        log("CSV ...")
        results.append(
            Measured(
                f"CSV statement, {n} entries (statement_response, stream consumed)",
                _timed(document("csv"), args.runs),
                2.0,
                "rows only",
                base,
            )
        )
        log("CSV through the API ...")
        label = f"CSV statement, {n} entries (GET /api/accounts/:id/statement)"
        try:
            results.append(Measured(label, _timed(api_csv, args.runs), 2.0, "rows only", base))
        except RuntimeError as error:  # the route is not wired (yet): the rest is still measured
            log(f"  {error}")
        log("PDF ...")
        results.append(
            Measured(
                f"PDF statement, {n} entries (statement_response)",
                _timed(document("pdf"), args.runs),
                5.0,
                "rows only",
                base,
            )
        )

        log(f"as-of at {args.instants} instants ...")
        rng = random.Random(args.seed + 1)
        instants = _as_of_instants(history, args.instants, rng)
        balance_as_of(account=account, instant=instants[0])  # warm
        lookups, wrong = [], []
        for instant in instants:
            started = time.perf_counter()
            answer = balance_as_of(account=account, instant=instant)
            lookups.append(time.perf_counter() - started)
            if (answer.seq, answer.balance) != history.balance_at(instant):
                wrong.append((instant, answer, history.balance_at(instant)))
        naive = []
        for instant in instants[: args.naive]:
            started = time.perf_counter()
            answer = _naive_as_of(account.pk, instant)
            naive.append(time.perf_counter() - started)
            if answer != history.balance_at(instant):
                wrong.append((instant, answer, history.balance_at(instant)))
        label = f"balance_as_of, {len(instants)} instants over {args.entries:,} entries (per lookup)"
        results.append(Measured(label, lookups, 0.010, "naive created_at <= T, sort desc, limit 1", naive))

    gen = history.counts
    print(
        f"\nbench-statements: {args.entries:,} entries on one account over {len(history.days)} IST days "
        f"({gen['fundings']:,} fundings, {gen['incoming']:,} in, {gen['outgoing']:,} out), generated in "
        f"{gen['seconds']:.0f} s; reconcile OK in {seconds:.1f} s; statement period {first_day} to {last_day}; "
        f"{os.cpu_count()} cores, embedded server on disk (--sync-on-commit)\n"
    )
    head = ["measurement", "median", "p90", "runs", "target", "verdict", "baseline median (p90)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(m.cells()) + " |" for m in results]
    print("\n".join(lines))
    if wrong:
        print(f"\n{len(wrong)} as-of answers differ from the ground truth, e.g. {wrong[:3]}")
        return 1
    print(f"\nall {len(instants) + len(naive)} as-of answers equal the ground truth kept while generating")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.statement_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--entries", type=int, default=100_000, help="ledger entries on the one account")
    parser.add_argument("--statement-entries", type=int, default=10_000, help="entries in the statement period")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per document (after one warm-up)")
    parser.add_argument("--instants", type=int, default=200, help="as-of lookups timed")
    parser.add_argument("--naive", type=int, default=3, help="instants the naive as-of query is timed on")
    parser.add_argument("--batch", type=int, default=5000, help="transfers per bulk insert")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    _exit_on_sigterm()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
