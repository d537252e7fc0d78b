"""One clock: the driver and the ORM return the same aware instant, every page shows it in IST,
staff statistics count IST days, and the API keeps ISO 8601 with an offset.

A transfer is committed for real, then its records are moved to a known instant just after an
IST midnight (15 Apr 2026 19:00 UTC = 16 Apr 2026 00:30 IST), where a UTC reading and an IST
reading disagree on the date as well as the time.
"""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db.models import F
from django.db.models.functions import TruncDay
from django.test import Client

from accounts.auth import token_issue
from accounts.models import Account, Role, User
from aegis.clock import bank_day_start, format_instant
from aegis.mongo import collection
from events.dispatcher import Dispatcher
from ledger.models import LedgerEntry
from notifications.handlers import notify_users
from notifications.models import Notification
from notifications.selectors import cursor_of
from tests.factories import make_user
from transfers.models import Transaction
from transfers.rollups import rollups_rebuild
from transfers.selectors import transaction_stats
from transfers.services import transfer_create

IST = ZoneInfo("Asia/Kolkata")
INSTANT = datetime(2026, 4, 15, 19, 0, tzinfo=UTC)
SHOWN = "16 Apr 2026, 00:30 IST"
SHOWN_SECONDS = "16 Apr 2026, 00:30:00 IST"
AMOUNT = 12_345  # ₹123.45


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def move_transfer_to(txn_id, moment: datetime) -> None:
    """Re-date a committed transfer: its transaction, both ledger rows and its notifications."""
    collection(Transaction).update_one(
        {"_id": txn_id}, {"$set": {"created_at": moment, "updated_at": moment, "completed_at": moment}}
    )
    collection(LedgerEntry).update_many({"transaction_id": txn_id}, {"$set": {"created_at": moment}})
    collection(Notification).update_many({"message": {"$regex": "123\\.45"}}, {"$set": {"created_at": moment}})
    # Lists read no further back than an account's opening (and a person's joining): open them earlier.
    txn = collection(Transaction).find_one({"_id": txn_id})
    opened = moment - timedelta(days=1)
    for account_id in (txn["from_account_id"], txn["to_account_id"]):
        account = Account.objects.get(pk=account_id)
        Account.objects.filter(pk=account_id).update(created_at=opened)
        User.objects.filter(pk=account.user_id).update(date_joined=opened)
    rollups_rebuild()  # history changed behind the app's back: the statistics rollups are recomputed


@pytest.fixture
def committed(funded_pair):
    """(sender, receiver, transaction id) of a completed ₹123.45 transfer dated INSTANT."""
    sender, receiver = funded_pair
    result = transfer_create(
        actor=sender.user,
        from_account_id=str(sender.pk),
        to_account_id=str(receiver.pk),
        amount_paise=AMOUNT,
        idempotency_key="clock-key-1",
        note="midnight chai",
    )
    assert result.transaction["status"] == "COMPLETED"
    dispatcher = Dispatcher(handlers={"notifications": notify_users})
    for _ in range(10):
        if not any(dispatcher.run_once().values()):
            break
    txn_id = result.transaction["_id"]
    move_transfer_to(txn_id, INSTANT)
    assert Notification.objects.filter(created_at=INSTANT).count() == 2  # sender's and receiver's
    return sender, receiver, txn_id


def test_driver_and_orm_return_the_same_aware_instant(committed):
    sender, _, txn_id = committed
    raw = collection(Transaction).find_one({"_id": txn_id})
    assert raw["created_at"].tzinfo is not None and raw["created_at"].utcoffset() == timedelta(0)
    assert raw["created_at"] == INSTANT
    entry = collection(LedgerEntry).find_one({"transaction_id": txn_id})
    assert entry["created_at"].tzinfo is not None and entry["created_at"] == INSTANT

    # The ORM loads the same instant (no double shift), and filters match it in any zone.
    mine = Notification.objects.get(user=sender.user, created_at=INSTANT)
    assert mine.created_at == INSTANT and mine.created_at.utcoffset() == timedelta(0)
    assert Notification.objects.filter(created_at=INSTANT.astimezone(IST)).count() == 2
    assert (
        Notification.objects.filter(created_at__gte=INSTANT, created_at__lt=INSTANT + timedelta(seconds=1)).count() == 2
    )
    assert Transaction.objects.get(pk=txn_id).created_at == INSTANT

    # F() updates write the instant back unchanged, read by the ORM and by the driver.
    Notification.objects.filter(pk=mine.pk).update(read_at=F("created_at"))
    mine.refresh_from_db()
    assert mine.read_at == INSTANT
    assert collection(Notification).find_one({"_id": mine.pk})["read_at"] == INSTANT

    # Database-side truncation to an IST day converts once: 16 Apr 00:00 IST.
    day = Notification.objects.filter(pk=mine.pk).annotate(d=TruncDay("created_at", tzinfo=IST)).get().d
    assert day == datetime(2026, 4, 16, tzinfo=IST)

    # A value written now reads back equal from both sides.
    fresh = Notification.objects.create(user=sender.user, event_id="f" * 24, event_type="x", message="now")
    fresh_raw = collection(Notification).find_one({"_id": fresh.pk})["created_at"]
    fresh.refresh_from_db()
    assert abs(fresh_raw - fresh.created_at) < timedelta(milliseconds=1)


def test_every_page_shows_the_instant_in_ist(committed, bank):
    sender, receiver, txn_id = committed
    customer = client_for(sender.user)
    pages = {
        "dashboard": customer.get("/dashboard"),
        "transactions": customer.get("/transactions"),
        "transfer result": customer.get("/transfer?key=clock-key-1"),
        "notifications": customer.get("/notifications"),
        "receiver's transactions": client_for(receiver.user).get("/transactions"),
    }
    staff = client_for(make_user(role=Role.ADMIN, name="Staff"))
    staff_pages = {
        "staff transactions": staff.get("/staff/transactions"),
        "staff transaction detail": staff.get(f"/staff/transactions/{txn_id}"),
    }
    for name, response in pages.items():
        body = response.content.decode()
        assert response.status_code == 200, name
        assert SHOWN in body, name
        # The UTC reading of the same instant (the old pymongo-backed pages) is gone.
        assert "15 Apr 2026" not in body and "19:00" not in body, name
    for name, response in staff_pages.items():
        body = response.content.decode()
        assert response.status_code == 200, name
        assert SHOWN_SECONDS in body, name
        assert "15 Apr 2026" not in body, name
    assert 'data-testid="result-time">' + SHOWN in pages["transfer result"].content.decode()


def test_notification_toast_shows_ist(committed):
    sender, _, _ = committed
    since = cursor_of(INSTANT - timedelta(minutes=1))
    body = client_for(sender.user).get(f"/notifications/poll?since={since}").content.decode()
    assert 'data-testid="notification-toast"' in body
    assert f'data-testid="toast-time">{SHOWN}<' in body


def test_staff_user_list_dates_joined_in_ist(db):
    joined = make_user(name="Late joiner")
    type(joined).objects.filter(pk=joined.pk).update(date_joined=INSTANT)
    staff = client_for(make_user(role=Role.ADMIN, name="Staff"))
    body = staff.get("/staff/users").content.decode()
    assert "16 Apr 2026" in body and "15 Apr 2026" not in body


def test_staff_stats_count_the_ist_day_and_start_at_an_ist_midnight(committed):
    _, _, txn_id = committed
    stats = transaction_stats(days=30, now=INSTANT + timedelta(hours=1))
    daily = {d["date"]: d for d in stats["daily"]}
    assert stats["daily"][-1]["date"] == "2026-04-16" and len(stats["daily"]) == 30
    assert daily["2026-04-16"] == {"date": "2026-04-16", "volume": AMOUNT, "completed": 1, "failed": 0}
    assert daily["2026-04-15"]["completed"] == 0  # its UTC day

    # The window's first day begins at midnight IST: a transfer at that instant counts, one a
    # second earlier (still inside the UTC day) does not.
    first = stats["daily"][0]["date"]
    start = datetime.fromisoformat(first).replace(tzinfo=IST)
    assert start == bank_day_start(INSTANT) - timedelta(days=29)
    move_transfer_to(txn_id, start)
    again = transaction_stats(days=30, now=INSTANT + timedelta(hours=1))
    assert again["daily"][0] == {"date": first, "volume": AMOUNT, "completed": 1, "failed": 0}
    move_transfer_to(txn_id, start - timedelta(seconds=1))
    before = transaction_stats(days=30, now=INSTANT + timedelta(hours=1))
    assert sum(d["completed"] for d in before["daily"]) == 0


def test_staff_stats_page_and_api_put_a_late_evening_utc_transfer_on_its_ist_day(committed):
    _, _, txn_id = committed
    # 00:30 IST yesterday (IST): always in the past, within 30 days, and on another UTC date.
    moment = bank_day_start(datetime.now(UTC)) - timedelta(days=1) + timedelta(minutes=30)
    move_transfer_to(txn_id, moment)
    ist_day = moment.astimezone(IST).date()
    assert moment.astimezone(UTC).date() != ist_day
    staff = make_user(role=Role.ADMIN, name="Staff")
    page = client_for(staff).get("/staff/stats").content.decode()
    assert f"<title>{ist_day:%d %b}: 1 completed</title>" in page
    assert f"<title>{ist_day:%d %b}: ₹123.45</title>" in page
    api = Client().get("/api/admin/stats", headers={"Authorization": f"Bearer {token_issue(user=staff)}"})
    daily = {d["date"]: d for d in api.json()["stats"]["daily"]}
    assert daily[ist_day.isoformat()]["completed"] == 1


ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


def test_api_times_are_iso_8601_with_an_offset(committed):
    sender, receiver, _ = committed
    auth = {"Authorization": f"Bearer {token_issue(user=sender.user)}"}
    history = Client().get(f"/api/transactions/{sender.pk}", headers=auth).json()["transactions"]
    moved = next(row for row in history if row["amount"] == 123.45)
    assert moved["createdAt"] == "2026-04-15T19:00:00+00:00"
    assert moved["transaction"]["createdAt"] == "2026-04-15T19:00:00+00:00"
    assert moved["transaction"]["completedAt"] == "2026-04-15T19:00:00+00:00"
    response = Client().post(
        "/api/transactions",
        {
            "fromAccount": str(sender.pk),
            "toAccount": str(receiver.pk),
            "amount": "1.00",
            "idempotencyKey": "clock-key-2",
        },
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 201, response.content
    created = response.json()["transaction"]
    for field in ("createdAt", "updatedAt"):
        assert ISO_WITH_OFFSET.match(created[field]), created[field]
    accounts = Client().get("/api/accounts", headers=auth).json()["accounts"]
    assert accounts and all(ISO_WITH_OFFSET.match(a["createdAt"]) for a in accounts)


def test_the_filter_formats_one_way():
    assert format_instant(INSTANT) == SHOWN
    assert format_instant(INSTANT.astimezone(IST)) == SHOWN
    assert format_instant(INSTANT, "seconds") == SHOWN_SECONDS
    assert format_instant(INSTANT, "date") == "16 Apr 2026"
    assert format_instant(datetime(2026, 12, 1, 14, 30, tzinfo=UTC)) == "1 Dec 2026, 20:00 IST"
    assert format_instant(None) == ""
