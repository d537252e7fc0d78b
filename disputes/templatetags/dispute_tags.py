"""`{% dispute_action receipt %}`: on a receipt, its sender's way to dispute it, or to its open dispute.

A tag, so the receipt page (statements) needs no knowledge of disputes beyond this one line.
"""

from django import template

from disputes.pages import dispute_action as action_for

register = template.Library()


@register.inclusion_tag("disputes/_receipt_action.html")
def dispute_action(receipt):
    return {"receipt": receipt, **action_for(receipt)}
