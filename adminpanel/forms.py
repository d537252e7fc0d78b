"""Input shapes for the staff console (filters and actions). Funding reuses transfers.forms."""

from __future__ import annotations

from django import forms

from accounts.models import AccountStatus
from aegis.ids import parse_object_id
from ledger.selectors import page_number
from transfers.models import TransactionStatus


class PageField(forms.Field):
    """A page number that never makes the form invalid: out of range or not a number is clamped."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def to_python(self, value) -> int:
        return page_number(value if value not in self.empty_values else 1)


class CursorField(forms.CharField):
    """A keyset cursor (an opaque token the page linked to); never makes the form invalid: the
    listing checks it, and a bad one shows the first page with a notice."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, strip=True, **kwargs)

    def run_validators(self, value):
        pass  # not even CharField's "no NUL characters": the listing refuses what it did not sign


class UserSearchForm(forms.Form):
    q = forms.CharField(label="Search by email", max_length=254, required=False, strip=True)
    page = PageField()
    cursor = CursorField()


class AccountStatusForm(forms.Form):
    status = forms.ChoiceField(choices=[(AccountStatus.FROZEN, "Freeze"), (AccountStatus.ACTIVE, "Unfreeze")])


class TransactionFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *[(s, s.title()) for s in TransactionStatus.values]], required=False
    )
    account = forms.CharField(label="Account ID", max_length=24, required=False, strip=True)
    page = PageField()
    cursor = CursorField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].widget.attrs.update(
            {"placeholder": "Sender or receiver account ID", "spellcheck": "false"}
        )

    def clean_account(self):
        value = self.cleaned_data["account"]
        oid = parse_object_id(value)
        if value and oid is None:
            raise forms.ValidationError("Enter a 24-character account ID.")
        return oid
