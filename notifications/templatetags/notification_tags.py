"""`{% notification_bell %}` (unread count, links to /notifications), `{% notification_poller %}`, and
`messages|toasts_grouped` (the page's Django messages as toasts, each text shown once)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django import template

from notifications.selectors import cursor_of, unread_count

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notification_bell(context):
    user = context["request"].user
    return {"unread": unread_count(user=user) if user.is_authenticated else 0, "oob_bell": False}


@register.inclusion_tag("notifications/_poller.html")
def notification_poller():
    return {"since": cursor_of(datetime.now(UTC))}


@dataclass(frozen=True)
class Toast:
    text: str
    level: str
    count: int


@register.filter
def toasts_grouped(messages) -> list[Toast]:
    """The messages in order of first appearance, one per (text, level), with how often it came.

    Three identical "Transfer failed." messages make one toast counted "×3", not a pile; the same
    text at another level (an error and a warning) stays separate. aegis.js merges toasts that
    arrive later (HTMX, the poller) the same way.
    """
    counts: dict[tuple[str, str], int] = {}
    for message in messages:
        key = (str(message), message.level_tag or "info")
        counts[key] = counts.get(key, 0) + 1
    return [Toast(text=text, level=level, count=count) for (text, level), count in counts.items()]
