"""`{{ paise|inr }}` -> ₹1,500.00 (integer paise in, Decimal arithmetic, never float)."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def inr(paise) -> str:
    rupees = (Decimal(int(paise)) / 100).quantize(Decimal("0.01"))
    sign = "-" if rupees < 0 else ""
    return f"{sign}₹{abs(rupees):,.2f}"
