"""Input shapes for the staff console (filters and actions, disputes and reversals included).
Funding reuses transfers.forms."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from accounts.models import AccountStatus
from aegis.clock import bank_day_start_of, parse_bank_date
from aegis.errors import ValidationFailed
from aegis.ids import parse_object_id
from aegis.money import parse_amount
from disputes.models import DisputeState
from ledger.selectors import page_number
from transfers.models import TransactionStatus
from transfers.selectors import ANY_TIME, StaffPeriod


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
    """Status, account, IST days From/To (inclusive) and an amount range in rupees (inclusive).

    Cleaned: `account` an ObjectId or None, `period` a transfers.selectors.StaffPeriod (From's
    IST midnight to the midnight after To), `min_amount`/`max_amount` paise or None.
    """

    FILTERS = ("status", "account", "date_from", "date_to", "min_amount", "max_amount")

    status = forms.ChoiceField(
        choices=[("", "Any status"), *[(s, s.title()) for s in TransactionStatus.values]], required=False
    )
    account = forms.CharField(label="Account ID", max_length=24, required=False, strip=True)
    date_from = forms.CharField(label="From", max_length=10, required=False, strip=True)
    date_to = forms.CharField(label="To", max_length=10, required=False, strip=True)
    min_amount = forms.CharField(label="Min ₹", max_length=32, required=False, strip=True)
    max_amount = forms.CharField(label="Max ₹", max_length=32, required=False, strip=True)
    page = PageField()
    cursor = CursorField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].widget.attrs.update(
            {"placeholder": "Sender or receiver account ID", "spellcheck": "false"}
        )
        for name in ("date_from", "date_to"):
            self.fields[name].widget = forms.DateInput(attrs={"type": "date"})
        for name in ("min_amount", "max_amount"):
            self.fields[name].widget.attrs.update({"inputmode": "decimal", "placeholder": "0.00"})

    def clean_account(self):
        value = self.cleaned_data["account"]
        oid = parse_object_id(value)
        if value and oid is None:
            raise forms.ValidationError("Enter a 24-character account ID.")
        return oid

    def _day(self, name: str, label: str):
        value = self.cleaned_data[name]
        if not value:
            return None
        try:
            return parse_bank_date(value, field=label)
        except ValidationFailed as err:
            raise forms.ValidationError(err.message) from err

    def clean_date_from(self):
        return self._day("date_from", "From")

    def clean_date_to(self):
        return self._day("date_to", "To")

    def _rupees(self, name: str, label: str):
        value = self.cleaned_data[name]
        if not value:
            return None
        try:
            return parse_amount(value, field=label)  # never rounded: 10.001 is refused
        except ValidationFailed as err:
            raise forms.ValidationError(err.message) from err

    def clean_min_amount(self):
        return self._rupees("min_amount", "Min amount")

    def clean_max_amount(self):
        return self._rupees("max_amount", "Max amount")

    def clean(self):
        data = super().clean()
        since, until = data.get("date_from"), data.get("date_to")
        if since and until and since > until:
            self.add_error("date_to", "To must be on or after From.")
        low, high = data.get("min_amount"), data.get("max_amount")
        if low is not None and high is not None and low > high:
            self.add_error("max_amount", "Max amount must be at least Min amount.")
        if not self.errors:
            data["period"] = (
                StaffPeriod(
                    since=bank_day_start_of(since) if since else None,
                    until=bank_day_start_of(until + timedelta(days=1)) if until else None,
                )
                if since or until
                else ANY_TIME
            )
        return data

    @property
    def searches_amount(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return data.get("min_amount") is not None or data.get("max_amount") is not None


class DisputeQueueForm(forms.Form):
    """The staff disputes queue's filters: one state (none: the open and under-review ones) and
    a minimum age in days."""

    state = forms.ChoiceField(
        choices=[("", "Open and under review"), *DisputeState.choices], required=False, label="State"
    )
    min_age = forms.IntegerField(
        label="At least (days old)", min_value=0, max_value=3650, required=False, widget=forms.TextInput
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["min_age"].widget.attrs.update({"inputmode": "numeric", "placeholder": "0"})


NOTE_MAX = 500


class ReversalProposeForm(forms.Form):
    """A maker's proposal: everything left to reverse, or a part of it (rupees), and why."""

    scope = forms.ChoiceField(
        choices=[("full", "Everything left"), ("partial", "Only this amount")], initial="full", widget=forms.RadioSelect
    )
    amount = forms.CharField(label="Amount (₹)", max_length=32, strip=False, required=False)
    note = forms.CharField(label="Note for the checker", max_length=NOTE_MAX, required=False, strip=True)

    def __init__(self, *args, left: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.left = left
        self.fields["amount"].widget.attrs.update({"inputmode": "decimal", "placeholder": "0.00"})
        self.fields["note"].widget = forms.Textarea(attrs={"rows": 2, "maxlength": NOTE_MAX})

    def clean(self):
        data = super().clean()
        if data.get("scope") == "full":
            data["amount_paise"] = self.left
        elif data.get("scope") == "partial":
            try:
                data["amount_paise"] = parse_amount(data.get("amount") or "")
            except ValidationFailed as err:
                self.add_error("amount", err.message.replace("amount ", "Amount ", 1))
        return data


class DisputeRejectForm(forms.Form):
    answer = forms.CharField(label="Answer to the customer", max_length=NOTE_MAX, strip=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["answer"].widget = forms.Textarea(attrs={"rows": 3, "maxlength": NOTE_MAX})


class ProposalDecisionForm(forms.Form):
    note = forms.CharField(label="Note", max_length=NOTE_MAX, required=False, strip=True)
