"""The shape of a customer's dispute (reason and note); the rules live in disputes.services."""

from __future__ import annotations

from django import forms

from disputes.models import DisputeReason
from disputes.services import MAX_NOTE_LENGTH


class DisputeForm(forms.Form):
    reason = forms.ChoiceField(
        label="What went wrong?",
        choices=DisputeReason.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose what went wrong.",
            "invalid_choice": "Choose one of the reasons listed.",
        },
    )
    note = forms.CharField(
        label="Tell us more",
        max_length=MAX_NOTE_LENGTH,
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": MAX_NOTE_LENGTH}),
        help_text=f"Optional, up to {MAX_NOTE_LENGTH} characters: what happened, who you meant to pay.",
    )
