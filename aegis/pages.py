"""Rendering shared by the customer and staff pages: a full page, or its HTMX partial."""

from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.http import trigger_client_event

from aegis.keyset import MAX_WALKED_PAGE, InvalidCursor

STALE_CURSOR = "That page link is no longer valid (or was made for other filters): showing the first page."


def render_page(request: HttpRequest, template: str, partial: str | None, context: dict, status: int = 200):
    """The full page, or for an HTMX request the named partial of the same template.

    For HTMX requests, pending Django messages travel as an `aegis:toasts` client event
    (HX-Trigger) that static/js/aegis.js turns into toasts; full pages render them in base.html.
    """
    if not request.htmx or not partial:
        response = render(request, template, context, status=status)
    else:
        response = render(request, f"{template}#{partial}", context, status=status)
        toasts = [{"level": m.level_tag or "info", "text": str(m)} for m in messages.get_messages(request)]
        if toasts:
            trigger_client_event(response, "aegis:toasts", {"items": toasts})
    patch_vary_headers(response, ("HX-Request",))
    return response


def keyset_read(read, *, cursor: str, page: int, stale: str = STALE_CURSOR):
    """A page from `cursor` or `?page=N` (clamped); a bad cursor: the first page and a notice, never an error."""
    try:
        return read(cursor=cursor or None, page=min(page, MAX_WALKED_PAGE)), ""
    except InvalidCursor:
        return read(cursor=None, page=1), stale
