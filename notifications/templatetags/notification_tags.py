"""`{% notification_bell %}` (unread count, links to /notifications) and `{% notification_poller %}`."""

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
