"""The shapes of the payee pages' input; the rules (valid ids, nicknames, duplicates, the limit)
belong to payees.services and payees.selectors, whose refusals the forms carry back to their fields."""

from __future__ import annotations

from django import forms

from aegis.errors import ValidationFailed
from payees.models import NICKNAME_MAX

# The service names its fields as the API does; the forms use Python names.
FORM_FIELDS = {"accountId": "account_id", "nickname": "nickname"}

# Generous on purpose: the service judges the value and says what is wrong with it in its words.
ACCOUNT_ID_MAX = 100


def _nickname_field() -> forms.CharField:
    return forms.CharField(
        label="Nickname",
        required=False,  # "required" is the service's message (clean_nickname), one wording everywhere
        max_length=NICKNAME_MAX * 4,
        strip=True,
        widget=forms.TextInput(attrs={"maxlength": NICKNAME_MAX, "autocomplete": "off"}),
        help_text="What you call them, for example “Mum” or “Rent”.",
    )


class PayeeForm(forms.Form):
    """Add a payee: the account id and a nickname. `step` is where the customer is in the
    confirmation: `check` shows whose account it is, `confirm` saves it, `edit` goes back."""

    STEPS = ("check", "confirm", "edit")

    account_id = forms.CharField(
        label="Account ID",
        required=False,
        max_length=ACCOUNT_ID_MAX,
        strip=True,
        widget=forms.TextInput(
            attrs={"maxlength": 24, "autocomplete": "off", "spellcheck": "false", "inputmode": "text"}
        ),
        help_text="The 24-character ID the person you pay gave you (letters a-f and digits).",
    )
    nickname = _nickname_field()
    step = forms.ChoiceField(choices=[(s, s) for s in STEPS], required=False, widget=forms.HiddenInput)

    def clean_step(self) -> str:
        return self.cleaned_data.get("step") or "check"

    def refuse(self, err: ValidationFailed) -> None:
        """Put a service's refusal on the field it names (or on the form)."""
        self.add_error(FORM_FIELDS.get(err.field or "", None), err.message)


class PayeeRenameForm(forms.Form):
    nickname = _nickname_field()

    def refuse(self, err: ValidationFailed) -> None:
        self.add_error("nickname" if err.field == "nickname" else None, err.message)
