"""/notifications, marking read (POST + CSRF), the poller's toasts, and the bell."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from notifications.models import Notification
from notifications.selectors import cursor_of
from notifications.services import notifications_insert
from tests.factories import make_user


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def notify(user, message="You received ₹10.00 from Aegis funding.", *, level="success", at=None, event_id=None):
    # Through the service, so the unread counter counts it (as the dispatcher's handler does).
    row = {
        "user_id": user.pk,
        "event_id": event_id or f"{Notification.objects.count():024d}",
        "event_type": "transaction.completed",
        "level": level,
        "message": message,
        "created_at": at or datetime.now(UTC),
        "read_at": None,
    }
    notifications_insert([row], session=None)
    return Notification.objects.get(pk=row["_id"])


@pytest.fixture
def person():
    return make_user(name="Asha")


def test_list_shows_only_my_notifications_newest_first(person):
    old = notify(person, "older one", at=datetime.now(UTC) - timedelta(minutes=5))
    new = notify(person, "newer one")
    notify(make_user(), "someone else's")
    page = client_for(person).get("/notifications")
    body = page.content.decode()
    assert page.status_code == 200
    assert body.index(new.message) < body.index(old.message)
    assert "someone else&#x27;s" not in body and "someone else's" not in body
    assert 'data-testid="notification-bell"' in body and '<span class="bell-count">2</span>' in body


def test_mark_read_needs_csrf_and_only_works_on_my_own(person):
    mine = notify(person)
    theirs = notify(make_user())
    client = client_for(person, enforce_csrf_checks=True)
    assert client.post(f"/notifications/{mine.pk}/read").status_code == 403  # no CSRF token
    client.get("/notifications")
    token = client.cookies["csrftoken"].value
    response = client.post(f"/notifications/{mine.pk}/read", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/notifications"
    mine.refresh_from_db()
    assert mine.read_at is not None
    assert client.post(f"/notifications/{theirs.pk}/read", {"csrfmiddlewaretoken": token}).status_code == 404
    assert client.post("/notifications/not-an-id/read", {"csrfmiddlewaretoken": token}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_read_with_htmx_swaps_the_row(person):
    mine = notify(person)
    response = client_for(person).post(f"/notifications/{mine.pk}/read", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f'id="notification-{mine.pk}"' in response.content.decode() and "Mark read" not in response.content.decode()


def test_mark_all_read(person):
    notify(person)
    notify(person, "second")
    response = client_for(person).post("/notifications/read-all")
    assert response.status_code == 302
    assert not Notification.objects.filter(user=person, read_at__isnull=True).exists()


def test_poll_returns_new_notifications_as_toasts_and_moves_its_cursor(person):
    client = client_for(person)
    since = cursor_of(datetime.now(UTC) - timedelta(seconds=1))
    empty = client.get(f"/notifications/poll?since={since}").content.decode()
    assert "notification-toast" not in empty and f"since={since}" in empty
    fresh = notify(person, "Your account is active again.")
    body = client.get(f"/notifications/poll?since={since}").content.decode()
    assert body.count('data-testid="notification-toast"') == 1 and fresh.message in body
    assert 'hx-swap-oob="beforeend:#toasts"' in body and 'href="/notifications"' in body
    next_since = cursor_of(fresh.created_at)
    assert f"since={next_since}" in body
    assert "notification-toast" not in client.get(f"/notifications/poll?since={next_since}").content.decode()


def test_customer_pages_poll_for_notifications_and_link_to_the_list(person):
    body = client_for(person).get("/dashboard").content.decode()
    assert 'id="notification-poll"' in body and 'hx-trigger="every 10s"' in body
    assert 'href="/notifications"' in body  # the no-JavaScript way in
    assert "<script>" not in body  # scripts stay external (CSP)
    assert 'id="notification-poll"' not in Client().get("/login").content.decode()
