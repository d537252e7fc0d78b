"""Input shapes for the transfer page and the staff funding form.

Forms check shape and turn rupees into paise (aegis.money.parse_amount); they read no
database: the rules (ownership, limits, idempotency, a key renewed for a changed intent) live in
transfers.services and transfers.pages.run_transfer.
"""

from __future__ import annotations

import uuid

from django import forms

from aegis.errors import ValidationFailed
from aegis.ids import parse_object_id
from aegis.money import paise_to_rupees, parse_amount

KEY_MAX = 100


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


class MoneyForm(forms.Form):
    """Recipient, amount (rupees), note and the server-issued idempotency key."""

    to_account = forms.CharField(label="Recipient account ID", max_length=24, strip=True)
    # Not stripped: the one amount parser refuses surrounding spaces instead of guessing.
    amount = forms.CharField(label="Amount (₹)", max_length=32, strip=False)
    note = forms.CharField(label="Note", max_length=140, required=False, strip=True)
    idempotency_key = forms.CharField(max_length=KEY_MAX, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_renewed = False  # set when the posted key is missing or carried another intent
        self.fields["to_account"].widget.attrs.update(
            {"autocomplete": "off", "spellcheck": "false", "placeholder": "24-character account ID"}
        )
        self.fields["amount"].widget.attrs.update({"inputmode": "decimal", "placeholder": "0.00"})
        self.fields["note"].widget.attrs.update({"placeholder": "Optional"})

    def clean_to_account(self) -> str:
        value = self.cleaned_data["to_account"]
        if parse_object_id(value) is None:
            raise forms.ValidationError("Enter a 24-character account ID (letters a-f and digits).")
        return value

    def clean_amount(self) -> int:
        try:
            return parse_amount(self.cleaned_data["amount"])
        except ValidationFailed as err:
            raise forms.ValidationError(err.message.replace("amount ", "Amount ", 1)) from None

    def clean_idempotency_key(self) -> str:
        key = self.cleaned_data.get("idempotency_key") or ""
        if not key or not key.isprintable():
            self.key_renewed = True
            return new_idempotency_key()
        return key


def initial_from_transaction(txn: dict) -> dict:
    """Form values that reproduce a stored transfer (for the retry form and the result page)."""
    return {
        "to_account": str(txn["to_account_id"]),
        "amount": str(paise_to_rupees(int(txn["amount"]))),
        "note": txn.get("note", ""),
        "idempotency_key": txn["idempotency_key"],
    }
