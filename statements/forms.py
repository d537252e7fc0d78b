"""The statement range form of the customer and staff pages: From and To days on the bank's clock.

The rules of a valid range (malformed days, end before start, the longest span, a day
after today) belong to `statements.selectors.statement_period`; the form only carries its answer back
to the fields it names.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django import forms

from aegis.clock import bank_time, now_ms
from aegis.errors import ValidationFailed
from statements.documents import FORMATS
from statements.selectors import Period, statement_period


def default_range(today: date | None = None) -> dict:
    """The first of this month (IST) to today (IST), as the form's query."""
    today = today or bank_time(now_ms()).date()
    return {"from": today.replace(day=1).isoformat(), "to": today.isoformat()}


class StatementRangeForm(forms.Form):
    # "from" is a Python keyword, so the fields are declared here rather than as attributes.
    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        for name, label in (("from", "From"), ("to", "To")):
            self.fields[name] = forms.CharField(
                label=label, required=False, max_length=10, widget=forms.DateInput(attrs={"type": "date"})
            )
        self.period: Period | None = None

    @classmethod
    def for_query(cls, query) -> StatementRangeForm:
        """Bound to the query, or to this month so far when the query names no day at all."""
        if "from" not in query and "to" not in query:
            query = default_range()
        return cls(query)

    def clean(self):
        data = super().clean()
        try:
            self.period = statement_period(data.get("from", ""), data.get("to", ""))
        except ValidationFailed as err:
            self.add_error(err.field if err.field in self.fields else None, err.message)
        return data


def statement_download_query(query) -> tuple[Period, str]:
    """The period and format of a download link; ValidationFailed (400) for anything else."""
    fmt = query.get("format", "")
    if fmt not in FORMATS:  # before any read: an unknown format costs nothing
        raise ValidationFailed(f"format must be one of: {', '.join(FORMATS)}.", field="format")
    return statement_period(query.get("from", ""), query.get("to", "")), fmt


def period_query(period: Period) -> str:
    """`from=..&to=..` naming the period's days, for its download links."""
    return urlencode({"from": period.first_day.isoformat(), "to": period.last_day.isoformat()})
