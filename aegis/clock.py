"""The bank's clock: instants are stored in UTC, and people see them in India Standard Time.

The database client returns aware UTC datetimes (DATABASES OPTIONS `tz_aware`), and the ORM
does too; this module is the one place that turns an instant into what a page shows, and that
knows where an IST day begins, so pages, toasts and the staff statistics agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from django.utils import dateformat

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
