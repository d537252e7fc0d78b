"""/notifications keyset pages (Newer/Older) and the poller, on thousands of real notifications."""

import html
import itertools
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from aegis import keyset
from notifications.selectors import LISTING, cursor_of
from notifications.services import notifications_insert
from tests.factories import make_user

NOW = datetime.now(UTC).replace(microsecond=0)
EVENT_IDS = itertools.count(1)
ROW = re.compile(r'id="notification-([0-9a-f]{24})"')
OLDER_LINK = re.compile(r'rel="next" href="([^"]+)"')
NEWER_LINK = re.compile(r'rel="prev" href="([^"]+)"')


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bulk_notify(user, moments: list[datetime], *, read: bool = False) -> list[dict]:
    """One notification per moment for `user`, inserted in batches (as the dispatcher writes them)."""
    rows = [
        {
            "user_id": user.pk,
            "event_id": f"{next(EVENT_IDS):024x}",
            "event_type": "transaction.completed",
            "level": "success",
            "message": f"You received ₹{k}.00 from Aegis funding.",
            "created_at": moment,
            "read_at": moment if read else None,
        }
        for k, moment in enumerate(moments)
    ]
    for i in range(0, len(rows), 1000):
        notifications_insert(rows[i : i + 1000], session=None)
    return rows


def spread(count: int, *, days: int, end: datetime = NOW) -> list[datetime]:
    """`count` instants over `days`, unevenly: bursts sharing one millisecond, quiet days, busy hours."""
    moments, start = [], end - timedelta(days=days)
    step = (end - timedelta(minutes=1) - start) / count
    for k in range(count):
        moment = start + step * k
        if k % 97 < 5:  # a burst: five notifications in the same millisecond
            moment = start + step * (k - k % 97)
        if 0.4 < k / count < 0.5:  # a quiet stretch packed into one hour
            moment = start + step * int(0.4 * count) + timedelta(seconds=k % 3600)
        moments.append(moment.replace(microsecond=moment.microsecond // 1000 * 1000))
    return moments


def newest_first(rows: list[dict]) -> list[str]:
    return [str(r["_id"]) for r in sorted(rows, key=lambda r: (r["created_at"], r["_id"]), reverse=True)]


def read_page(client, href: str = "") -> tuple[list[str], str, str, str]:
    response = client.get("/notifications" + html.unescape(href))
    assert response.status_code == 200
    body = response.content.decode()
    older, newer = OLDER_LINK.search(body), NEWER_LINK.search(body)
    return ROW.findall(body), older.group(1) if older else "", newer.group(1) if newer else "", body


@pytest.fixture
def person():
    return make_user(name="Ravi", date_joined=NOW - timedelta(days=40))


def test_walking_older_then_newer_sees_every_notification_once_in_order(person):
    rows = bulk_notify(person, spread(2_000, days=30))
    expected = newest_first(rows)
    client = client_for(person)

    pages, href = [], ""
    while True:
        ids, older, newer, _ = read_page(client, href)
        assert len(ids) == 20 or not older  # only the last page may be short
        assert bool(newer) == bool(pages)  # the first page has no Newer link
        pages.append(ids)
        if not older:
            break
        href = older
    walked = [i for page in pages for i in page]
    assert walked == expected  # every one, once, newest first

    # Back up with Newer from the last page: the same pages, in reverse, up to the newest.
    back, href = [], NEWER_LINK.search(read_page(client, href)[3]).group(1)
    while href:
        ids, _, href, _ = read_page(client, href)
        back.append(ids)
    assert back == pages[-2::-1]


def test_notifications_arriving_between_page_reads_are_neither_lost_nor_repeated(person):
    rows = bulk_notify(person, spread(600, days=10, end=NOW - timedelta(minutes=5)))
    client = client_for(person)
    seen, href, arrived = [], "", []
    for n in range(200):
        ids, href, _, _ = read_page(client, href)
        seen += ids
        if n % 3 == 0:  # new notifications land at the top while the person reads older pages
            arrived += bulk_notify(person, [datetime.now(UTC)] * 2)
        if not href:
            break
    assert seen == newest_first(rows)  # the older walk shifts by nothing that arrived meanwhile
    assert len(arrived) >= 20

    # Walking back up with Newer shows every new one too, each once, ending on today's newest page.
    back = []
    newer = NEWER_LINK.search(read_page(client, OLDER_LINK.search(read_page(client)[3]).group(1))[3]).group(1)
    while newer:
        ids, _, newer, _ = read_page(client, newer)
        back.append(ids)
    assert back[-1] == read_page(client)[0] == newest_first(rows + arrived)[:20]
    assert set(newest_first(arrived)) <= {i for page in back for i in page}


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "eyJkIjoib2xkZXIifQ:1abcde:forged-signature",
        "x" * 600,
    ],
)
def test_a_tampered_cursor_shows_the_first_page_with_a_notice(person, cursor):
    rows = bulk_notify(person, spread(50, days=2))
    ids, older, newer, body = read_page(client_for(person), f"?cursor={cursor}")
    assert ids == newest_first(rows)[:20] and older and not newer
    assert 'data-testid="notification-notice"' in body and "no longer valid" in body


def test_someone_elses_valid_cursor_is_refused_here(person):
    bulk_notify(person, spread(50, days=2))
    other = make_user(date_joined=NOW - timedelta(days=40))
    theirs = bulk_notify(other, spread(50, days=2))
    _, their_older, _, _ = read_page(client_for(other))
    # Their Older link, replayed by me: signed for their scope, so mine shows my first page.
    ids, _, _, body = read_page(client_for(person), their_older)
    assert "no longer valid" in body and not set(ids) & set(newest_first(theirs))
    token = keyset.encode_cursor(
        keyset.Cursor(keyset.OLDER, keyset.Position(NOW, theirs[0]["_id"]), timedelta(hours=1)),
        listing=LISTING,
        scope=str(other.pk),
    )
    assert "no longer valid" in read_page(client_for(person), f"?cursor={token}")[3]


def poll(client, since) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.get(f"/notifications/poll?since={since}")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    return elapsed, response.content.decode()


def test_the_poll_with_an_old_or_forged_since_stays_bounded_and_correct(person):
    rows = bulk_notify(person, spread(5_000, days=30, end=NOW - timedelta(minutes=2)))
    client = client_for(person)
    poll(client, cursor_of(NOW))  # warm up (session, templates)
    newest = [r["message"] for r in sorted(rows, key=lambda r: (r["created_at"], r["_id"]))][-5:]
    for since in (0, 1, cursor_of(NOW - timedelta(days=3650)), -(10**15), "abc", 10**20):
        timings = []
        for _ in range(5):
            elapsed, body = poll(client, since)
            timings.append(elapsed)
        toasts = re.findall(r'data-testid="notification-toast">.*?toast-text">(.*?) <span', body)
        if since in (0, 1, cursor_of(NOW - timedelta(days=3650))):
            assert [html.unescape(t) for t in toasts] == newest  # the newest five, oldest first
        else:  # unreadable or out of range: "from now", so nothing old is toasted
            assert toasts == []
        # Its cursor moves to a real instant, never into the future.
        cursor = int(re.search(r"since=(-?\d+)", body).group(1))
        assert cursor <= cursor_of(datetime.now(UTC))
        assert '<span class="bell-count">99+</span>' in body
        # Tens of milliseconds on 5,000 notifications (a full read of them took over a second).
        assert statistics.median(timings) < 0.15, (since, timings)


def test_the_poll_toasts_what_arrived_since_its_cursor_and_nothing_twice(person):
    bulk_notify(person, spread(1_000, days=5, end=NOW - timedelta(minutes=2)))
    client = client_for(person)
    since = int(re.search(r"since=(\d+)", poll(client, cursor_of(datetime.now(UTC)))[1]).group(1))
    fresh = bulk_notify(person, [datetime.now(UTC) + timedelta(milliseconds=k) for k in (1, 2)])
    body = poll(client, since)[1]
    assert body.count('data-testid="notification-toast"') == 2
    assert all(html.escape(r["message"]) in body or r["message"] in body for r in fresh)
    since = int(re.search(r"since=(\d+)", body).group(1))
    assert 'data-testid="notification-toast"' not in poll(client, since)[1]
