"""One amount parser for every surface: refused, never rounded (aegis.money.parse_amount)."""

from decimal import Decimal

import pytest
from django.test import override_settings

from aegis.errors import ValidationFailed
from aegis.money import parse_amount
from tests.accounts.conftest import api_as
from tests.factories import make_account
from tests.pages.conftest import client_for
from transfers.models import Transaction

REFUSED_STRINGS = [
    "10\n",
    " 10",
    "10 ",
    "\t10",
    "١٠",
    "１０",
    "1e1",
    "1E1",
    "1_0",
    "1_000",
    "1,000",
    "+10",
    "-10",
    "10.",
    ".5",
    "10.001",
    "10.0000000000000000000000000001",
    "9999.9999999999999999999999999",
    "0x10",
    "NaN",
    "Infinity",
    "",
    "10.5.0",
    "₹10",
    "1" * 33,
]


@pytest.mark.parametrize("text", REFUSED_STRINGS)
def test_a_string_outside_the_rule_is_refused_with_the_rule(text):
    with pytest.raises(ValidationFailed) as refused:
        parse_amount(text)
    assert refused.value.field == "amount"
    assert "ASCII digits" in refused.value.message or "greater than zero" in refused.value.message


@pytest.mark.parametrize(
    ("value", "paise"),
    [
        ("10", 1000),
        ("10.5", 1050),
        ("10.50", 1050),
        ("0.01", 1),
        ("10000", 1_000_000),
        ("0010", 1000),
        (10, 1000),
        (Decimal("1500.50"), 150050),
        (Decimal("10.0"), 1000),
    ],
)
def test_plain_rupees_become_exact_paise(value, paise):
    assert parse_amount(value) == paise


@pytest.mark.parametrize(
    "value",
    [
        Decimal("10.0000000000000000000000000001"),
        Decimal("9999.9999999999999999999999999"),
        Decimal("1E+3"),
        Decimal("1E-7"),
        Decimal("-5"),
        Decimal("NaN"),
        10.5,
        True,
        None,
        [10],
        -5,
    ],
)
def test_numbers_that_are_not_plain_rupees_are_refused(value):
    with pytest.raises(ValidationFailed):
        parse_amount(value)


def test_range_is_checked_after_the_shape():
    with pytest.raises(ValidationFailed, match="greater than zero"):
        parse_amount("0.00")
    with pytest.raises(ValidationFailed, match="at most ₹10,000.00"):
        parse_amount("10000.01")


@pytest.fixture
def pair(fund):
    sender, receiver = make_account(), make_account()
    fund(sender, 2_000_000)
    return sender, receiver


RAW_BODIES = [
    '"10\\n"',  # the string "10" + newline
    "10.0000000000000000000000000001",  # 29+ significant digits: was rounded to ₹10.00
    "9999.9999999999999999999999999",  # was rounded to ₹10,000.00
    "1e1",
    "10.000",
]


@pytest.mark.parametrize("amount_json", RAW_BODIES)
def test_the_api_refuses_what_it_used_to_round(pair, amount_json):
    sender, receiver = pair
    raw = (
        f'{{"fromAccount": "{sender.pk}", "toAccount": "{receiver.pk}", "amount": {amount_json}, '
        f'"idempotencyKey": "k-raw"}}'
    )
    with override_settings(AEGIS_RATELIMIT_STRICT="10000/15m"):
        response = api_as(sender.user).generic("POST", "/api/transactions", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["code"], body["field"]) == ("validation_error", "amount")
    assert "ASCII digits" in body["message"]
    assert not Transaction.objects.filter(idempotency_key="k-raw").exists()


@pytest.mark.parametrize("text", ["١٠", "１０", "1e1", "1_0", " 10 ", "1e3", "1_000"])
def test_the_transfer_page_refuses_loose_amounts(pair, text, settings):
    settings.AEGIS_RATELIMIT_STRICT = "10000/15m"
    sender, receiver = pair
    response = client_for(sender.user).post(
        "/transfer", {"to_account": str(receiver.pk), "amount": text, "idempotency_key": "page-key"}
    )
    assert response.status_code in (200, 400)
    assert "ASCII digits" in response.content.decode()
    assert not Transaction.objects.filter(idempotency_key="page-key").exists()


@pytest.mark.parametrize("text", ["1e3", "1_000", " 100"])
def test_the_staff_funding_form_refuses_loose_amounts(bank, text, settings):
    settings.AEGIS_RATELIMIT_STRICT = "10000/15m"
    receiver = make_account()
    client = client_for(bank.admin_user)
    session = client.session
    # A fresh password confirmation, so the form reaches the amount check.
    from aegis.security import session_mark_signed_in

    session_mark_signed_in(session)
    session.save()
    response = client.post(
        "/staff/fund", {"to_account": str(receiver.pk), "amount": text, "idempotency_key": "staff-key"}
    )
    assert "ASCII digits" in response.content.decode()
    assert not Transaction.objects.filter(idempotency_key="staff-key").exists()
