"""The bank's clock: instants are stored in UTC, and people see them in India Standard Time.

The database client returns aware UTC datetimes (DATABASES OPTIONS `tz_aware`), and the ORM
does too; this module is the one place that turns an instant into what a page shows, and that
knows where an IST day begins, so pages, toasts and the staff statistics agree.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import dateformat

from aegis.errors import ValidationFailed

BANK_TIME_ZONE = "Asia/Kolkata"
BANK_TZ = ZoneInfo(BANK_TIME_ZONE)
BANK_TZ_LABEL = "IST"

# Django date-format strings (see the `date` filter); every page uses one of these.
FORMATS = {
    "minutes": "j M Y, H:i",
    "seconds": "j M Y, H:i:s",
    "date": "j M Y",
}


def aware(moment: datetime) -> datetime:
    """`moment` as an aware datetime: naive values (from a client without `tz_aware`) are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def now_ms() -> datetime:
    """Now in UTC, truncated to what MongoDB keeps (milliseconds), so a value we hold equals its read-back."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def bank_time(value: datetime) -> datetime:
    """The same instant on the bank's clock. BSON dates are UTC, so a naive value means UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BANK_TZ)


def bank_day_start(moment: datetime) -> datetime:
    """Midnight IST that begins the IST day `moment` falls on (aware, in IST)."""
    return bank_time(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def format_instant(value: datetime | date | None, precision: str = "minutes") -> str:
    """`1 Dec 2026, 20:00 IST` (or with seconds, or the IST date alone); "" for None."""
    if value is None or value == "":
        return ""
    fmt = FORMATS.get(precision, FORMATS["minutes"])
    if isinstance(value, datetime):
        local = bank_time(value)
        text = dateformat.format(local, fmt)
        return text if precision == "date" else f"{text} {BANK_TZ_LABEL}"
    if isinstance(value, date):  # a calendar date has no zone to convert
        return dateformat.format(value, FORMATS["date"])
    return str(value)


# What a person or a client may write for a day or an instant: ISO 8601, ASCII, bounded length
# (fromisoformat alone would take "2026-W48-2" week dates and non-ASCII digits).
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?", re.ASCII
)
INSTANT_RULE = "an ISO 8601 date (2026-12-01) or time (2026-12-01T18:30:00Z, +05:30, or no offset for IST)"
EARLIEST_DAY = date(2000, 1, 1)  # before Aegis; keeps every instant we compute inside datetime's range


def parse_bank_date(text, *, field: str) -> date:
    """A calendar day written YYYY-MM-DD (a statement's first or last day, on the bank's clock)."""
    value = text.strip() if isinstance(text, str) else ""
    try:
        day = date.fromisoformat(value) if _DAY.fullmatch(value) else None
    except ValueError:
        day = None
    if day is None:
        raise ValidationFailed(f"{field} must be a date written YYYY-MM-DD, like 2026-12-01.", field=field)
    if day < EARLIEST_DAY:
        raise ValidationFailed(f"{field} must be on or after {EARLIEST_DAY.isoformat()}.", field=field)
    return day


def bank_day_start_of(day: date) -> datetime:
    """Midnight IST that begins `day`, as an aware UTC instant."""
    return datetime(day.year, day.month, day.day, tzinfo=BANK_TZ).astimezone(UTC)


def parse_instant(text, *, field: str) -> datetime:
    """An instant from ISO 8601 text, as an aware UTC datetime.

    With `Z` or an offset it is exact; without one it is read on the bank's clock (IST); a date
    alone means the end of that IST day (its last millisecond), so "the balance as of 30 Nov" is
    the balance that day closed with. Anything else is a ValidationFailed naming `field`.
    """
    value = text.strip() if isinstance(text, str) else ""
    try:
        if _DAY.fullmatch(value):
            day = parse_bank_date(value, field=field)
            return bank_day_start_of(day + timedelta(days=1)) - timedelta(milliseconds=1)
        moment = datetime.fromisoformat(value) if _INSTANT.fullmatch(value) else None
        if moment is not None and moment.date() < EARLIEST_DAY:  # as written, before any conversion
            moment = None
        if moment is not None:
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=BANK_TZ)).astimezone(UTC)
    except (ValueError, OverflowError):  # a day past datetime's range (9999-12-31 end of day)
        moment = None
    if moment is None:
        raise ValidationFailed(f"{field} must be {INSTANT_RULE}.", field=field)
    return moment
