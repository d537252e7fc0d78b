"""`{{ paise|inr }}` -> ₹1,00,000.00 (aegis.money.format_inr, so pages and documents agree)."""

from django import template

from aegis.money import format_inr

register = template.Library()


@register.filter
def inr(paise) -> str:
    return format_inr(paise)
