"""Input shapes for the transfer page and the staff funding form.

Forms check shape and turn rupees into paise (aegis.money.parse_amount); they read no
database (the view passes the customer's payees in): the rules (ownership, limits, idempotency,
a key renewed for a changed intent, confirmation of payee) live in transfers.services and
transfers.pages.
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
        self.replayed = False  # set by run_transfer when the press only replayed a COMPLETED key
        self.fields["to_account"].widget.attrs.update(
            {"autocomplete": "off", "spellcheck": "false", "placeholder": "24-character account ID"}
        )
        self.fields["amount"].widget.attrs.update({"inputmode": "decimal", "placeholder": "0.00"})
        self.fields["note"].widget.attrs.update({"placeholder": "Optional"})

    def clean_to_account(self) -> str:
        oid = parse_object_id(self.cleaned_data["to_account"])
        if oid is None:
            raise forms.ValidationError("Enter a 24-character account ID (letters a-f and digits).")
        # The id as the engine stores it (lower case): "is this key's transfer the same one?"
        # compares strings, and "65A1..." typed twice must be the same recipient, never a new key.
        return str(oid)

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


class TransferForm(MoneyForm):
    """The customer's transfer: pay a saved payee or an account id, reviewed before it is sent.

    `step` comes from the button pressed: "review" (the default: nothing is sent), "edit" (back
    to the form, values kept) or "send". The confirmation fields only matter on "send".
    """

    STEPS = ("review", "edit", "send")

    payee = forms.ChoiceField(
        label="Pay a saved payee",
        required=False,
        error_messages={"invalid_choice": "That payee is no longer in your list: choose another."},
    )
    confirm_name = forms.BooleanField(required=False)
    save_payee = forms.BooleanField(label="Also save as a payee", required=False)
    nickname = forms.CharField(label="Nickname", max_length=80, required=False, strip=True)
    review_token = forms.CharField(max_length=500, required=False, widget=forms.HiddenInput)

    field_order = ["payee", "to_account", "amount", "note", "idempotency_key"]

    def __init__(self, *args, payees=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.payees = {str(payee.pk): payee for payee in payees}
        self.fields["payee"].choices = [("", "Someone else (enter an account ID)")] + [
            (pk, f"{payee.nickname} ({payee.holder_name})") for pk, payee in self.payees.items()
        ]
        self.fields["to_account"].required = False
        if self.payees:
            self.fields["to_account"].label = "Or an account ID"
        self.fields["payee"].widget.attrs["data-testid"] = "payee-select"

    @property
    def step(self) -> str:
        step = self.data.get("step", "review") if self.is_bound else "review"
        return step if step in self.STEPS else "review"

    @property
    def compose_fields(self):
        """The fields of the first step (the rest belong to the review)."""
        return [self[name] for name in ("payee", "to_account", "amount", "note")]

    def clean_to_account(self) -> str:
        return super().clean_to_account() if self.cleaned_data["to_account"] else ""

    def clean(self):
        data = super().clean()
        payee = self.payees.get(data.get("payee") or "")
        data["payee_obj"] = payee
        if payee is not None:  # a chosen payee decides the account; a typed id is ignored
            data["to_account"] = str(payee.account_id)
        elif not data.get("to_account") and not {"to_account", "payee"} & set(self.errors):
            self.add_error("to_account", "Choose a payee or enter the account ID you are paying.")
        return data


def initial_from_transaction(txn: dict) -> dict:
    """Form values that reproduce a stored transfer (for the retry form and the result page)."""
    return {
        "to_account": str(txn["to_account_id"]),
        "amount": str(paise_to_rupees(int(txn["amount"]))),
        "note": txn.get("note", ""),
        "idempotency_key": txn["idempotency_key"],
    }
