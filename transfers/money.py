"""Money is integer paise everywhere inside Aegis; rupees exist only at the edges.

Amounts are parsed with Decimal, never float: `10.001` is refused, not rounded.
"""

from decimal import Decimal, InvalidOperation

from aegis.errors import ValidationFailed

PAISE_PER_RUPEE = 100
MAX_TRANSFER_PAISE = 10_000 * PAISE_PER_RUPEE


def parse_amount(value, *, field: str = "amount") -> int:
    """Rupees as a JSON number (parsed as Decimal), string or int -> positive integer paise."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        # floats only reach here from code that parsed JSON without Decimal: refuse, never round.
        raise ValidationFailed(f"{field} must be a number of rupees with at most 2 decimals.", field=field)
    if isinstance(value, str):
        value = value.strip()
        if not value or len(value) > 32:
            raise ValidationFailed(f"{field} must be a number of rupees with at most 2 decimals.", field=field)
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationFailed(f"{field} must be a number of rupees with at most 2 decimals.", field=field) from None
    if not amount.is_finite():
        raise ValidationFailed(f"{field} must be a finite number.", field=field)
    if amount <= 0:
        raise ValidationFailed(f"{field} must be greater than zero.", field=field)
    if amount > Decimal(MAX_TRANSFER_PAISE) / PAISE_PER_RUPEE:
        raise ValidationFailed(f"{field} must be at most ₹10,000.00 per transfer.", field=field)
    paise = amount * PAISE_PER_RUPEE
    if paise != paise.to_integral_value():
        raise ValidationFailed(f"{field} can have at most 2 decimal places.", field=field)
    return int(paise)


def paise_to_rupees(paise: int) -> Decimal:
    return (Decimal(int(paise)) / PAISE_PER_RUPEE).quantize(Decimal("0.01"))


def format_inr(paise: int) -> str:
    """₹1,500.00 — grouped the simple (thousands) way; negative for the system account."""
    rupees = paise_to_rupees(paise)
    sign = "-" if rupees < 0 else ""
    return f"{sign}₹{abs(rupees):,.2f}"
