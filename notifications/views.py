"""The notification list, marking notifications read, and the poller that shows new ones as toasts.

Every page works without JavaScript: the bell in the top bar links to /notifications, and the
"Mark read" buttons are plain forms (POST with CSRF, then a redirect). With htmx, base.html's
poller asks /notifications/poll every 10 s for notifications newer than its cursor; the answer
is the poller itself (with the next cursor), new toasts appended to #toasts and the bell's
unread count, both as out-of-band swaps. An htmx "Mark read" answers the row with the bell and
the "Mark all read" count out of band, so the count drops at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from accounts.policy import USER, policy
from aegis.keyset import InvalidCursor
from ledger.selectors import page_number
from notifications import selectors, services

LIST_TEMPLATE = "notifications/notification_list.html"


@policy(USER, methods=["GET"])
def notification_list(request: HttpRequest):
    notice = ""
    try:
        page = selectors.notifications_for_user(
            user=request.user, cursor=request.GET.get("cursor", ""), page=page_number(request.GET.get("page", 1))
        )
    except InvalidCursor:  # an edited or foreign link: the first page, never an error page
        page, notice = selectors.notifications_for_user(user=request.user), "That page link is no longer valid."
    context = {"page": page, "notice": notice, "unread": selectors.unread_count(user=request.user)}
    template = f"{LIST_TEMPLATE}#notification-list" if request.htmx else LIST_TEMPLATE
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@policy(USER, methods=["POST"])
def notification_read(request: HttpRequest, notification_id: str):
    notification = selectors.notification_get_owned(user=request.user, notification_id=notification_id)
    services.notification_mark_read(user=request.user, notification=notification)
    if request.htmx:
        # The row, and out of band the bell and the "Mark all read (N)" button: the count drops
        # with the click, not at the next poll 10 s later.
        context = {"n": notification, "unread": selectors.unread_count(user=request.user)}
        response = render(request, f"{LIST_TEMPLATE}#marked-read", context)
        patch_vary_headers(response, ("HX-Request",))
        return response
    return redirect(reverse("notifications:list"))


@policy(USER, methods=["POST"])
def notifications_read_all(request: HttpRequest):
    services.notifications_mark_all_read(user=request.user)
    return redirect(reverse("notifications:list"))


@policy(USER, methods=["GET"])
def notification_poll(request: HttpRequest):
    since = selectors.poll_cursor(request.GET.get("since"))
    fresh = selectors.notifications_since(user=request.user, since=since)
    cursor = max([since] + [n.created_at.astimezone(UTC) for n in fresh]) if fresh else since
    context = {
        "toasts": fresh,
        "since": selectors.cursor_of(min(cursor, datetime.now(UTC))),
        "unread": selectors.unread_count(user=request.user),
    }
    response = render(request, "notifications/_poll.html", context)
    response["Cache-Control"] = "no-store"
    return response
