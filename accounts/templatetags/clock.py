"""`{{ instant|ist }}` -> "1 Dec 2026, 20:00 IST": the one way a page shows a time.

`{{ instant|ist:"seconds" }}` adds seconds (staff pages), `{{ instant|ist:"date" }}` is the IST
date alone. Aware and naive (UTC) datetimes alike come out on the bank's clock (aegis/clock.py).
"""

from django import template

from aegis.clock import format_instant

register = template.Library()


@register.filter
def ist(value, precision: str = "minutes") -> str:
    return format_instant(value, precision)
