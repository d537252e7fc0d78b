"""Money is integer paise everywhere inside Aegis; rupees exist only at the edges.

`parse_amount` is the one way an amount enters Aegis, from every surface (JSON numbers and
strings, page and staff forms, commands). The rule is written, not inferred: ASCII digits,
optionally one point and one or two more digits. No sign, exponent, underscore, grouping,
whitespace or non-ASCII digit. Paise are computed with integer arithmetic from the digits, so
no precision context can round an amount: it is refused, never rounded.
"""

import re
from decimal import Decimal

from aegis.errors import ValidationFailed

PAISE_PER_RUPEE = 100
MAX_TRANSFER_PAISE = 10_000 * PAISE_PER_RUPEE
# Far past any allowed amount (so "00010000.00" still parses), short enough to bound the work.
MAX_AMOUNT_CHARS = 32
_AMOUNT = re.compile(r"(?P<rupees>[0-9]+)(?:\.(?P<paise>[0-9]{1,2}))?", re.ASCII)
AMOUNT_RULE = (
    "rupees in ASCII digits with at most 2 decimals, like 1500 or 1500.50 (no sign, exponent, spaces or separators)"
)


def parse_amount(value, *, field: str = "amount") -> int:
    """Rupees (a JSON integer, a JSON number parsed as Decimal, or a string) -> positive integer paise.

    A JSON number is judged by the digits it was written with (`Decimal` keeps them): 10.5 and
    10.50 pass, 1e3, 10.001 and 10.0000000000000000000000000001 are refused.
    """
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        # A float only reaches here from code that parsed JSON without Decimal: refuse, never round.
        raise ValidationFailed(f"{field} must be {AMOUNT_RULE}.", field=field)
    text = value if isinstance(value, str) else str(value)
    match = _AMOUNT.fullmatch(text) if len(text) <= MAX_AMOUNT_CHARS else None
    if match is None:
        raise ValidationFailed(f"{field} must be {AMOUNT_RULE}.", field=field)
    paise = int(match["rupees"]) * PAISE_PER_RUPEE + int((match["paise"] or "0").ljust(2, "0"))
    if paise <= 0:
        raise ValidationFailed(f"{field} must be greater than zero.", field=field)
    if paise > MAX_TRANSFER_PAISE:
        raise ValidationFailed(f"{field} must be at most ₹10,000.00 per transfer.", field=field)
    return paise


def paise_to_rupees(paise: int) -> Decimal:
    return (Decimal(int(paise)) / PAISE_PER_RUPEE).quantize(Decimal("0.01"))


def rupees(paise: int) -> int | float:
    """Paise as the API's JSON number of rupees (150050 -> 1500.5): exact, since paise have 2 decimals."""
    value = paise_to_rupees(paise)
    return int(value) if value == value.to_integral_value() else float(value)


def _indian_grouping(digits: str) -> str:
    """ "12345678" -> "1,23,45,678": the last three digits, then pairs (lakh, crore)."""
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    pairs = []
    while len(head) > 2:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    return ",".join([head, *pairs, tail])


def format_inr(paise: int) -> str:
    """₹1,00,000.00: the Indian grouping (lakh, crore) that every page and document shows.

    Negative for the system account ("-₹1,00,000.00"). Integer arithmetic, so no rounding.
    """
    paise = int(paise)
    sign = "-" if paise < 0 else ""
    whole, fraction = divmod(abs(paise), PAISE_PER_RUPEE)
    return f"{sign}₹{_indian_grouping(str(whole))}.{fraction:02d}"


def decimal_rupees(paise: int) -> str:
    """ "1500.00": rupees with exactly two places and no symbol or grouping, for CSV and machines."""
    paise = int(paise)
    sign = "-" if paise < 0 else ""
    whole, fraction = divmod(abs(paise), PAISE_PER_RUPEE)
    return f"{sign}{whole}.{fraction:02d}"
