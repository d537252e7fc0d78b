"""The history page (/transactions): filters through the GET form, bad input (400 with the
messages and what was typed, nothing read), the empty states, and links that keep the filters."""

import html
import re

import pytest
from django.test import Client

from tests.factories import make_account, make_user
from tests.transfers.test_history_keyset import bulk_history
from transfers.selectors import account_history


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"


def client_for(account):
    client = Client()
    client.force_login(account.user)
    return client


@pytest.fixture
def customer():
    account = make_account(user=make_user(name="Meera Menon"))
    bulk_history(account, [make_account(user=make_user(name="Ravi Kumar"))], 120, seed=31)
    return account


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "31/12/2026"}, "from"),
        ({"from": "2026-12-05", "to": "2026-12-01"}, "to"),
        ({"min": "10.001"}, "min"),
        ({"max": "lots"}, "max"),
        ({"direction": "<script>"}, "direction"),
        ({"status": "DONE"}, "status"),
        ({"q": "y" * 200}, "q"),
    ],
)
def test_bad_filter_input_is_a_400_page_with_the_message_and_what_was_typed(customer, query, field):
    response = client_for(customer).get("/transactions", query)
    body = response.content.decode()
    assert response.status_code == 400
    assert f'data-testid="error-{field}"' in body and 'data-testid="filter-errors"' in body
    assert 'data-testid="history-table"' not in body  # nothing was searched
    assert "<script>" not in body  # what was typed comes back escaped
    for value in query.values():
        if field not in ("direction", "status"):  # a select shows its own options
            assert html.escape(value) in body or value in body
    assert 'data-testid="filter-clear"' in body


def test_a_filtered_page_lists_only_matches_and_its_links_keep_the_filters(customer):
    client = client_for(customer)
    response = client.get("/transactions", {"direction": "OUT", "q": "n1"})
    body = response.content.decode()
    assert response.status_code == 200
    rows = response.context["page"]["rows"]
    assert rows and all(r["direction"] == "OUT" and "n1" in r["note"] for r in rows)
    assert all(r["counterparty"] == "Ravi K." for r in rows)
    older = re.search(r'rel="next"[^>]*href="([^"]+)"', body)
    if older:
        link = html.unescape(older.group(1))
        assert "direction=OUT" in link and "q=n1" in link and "cursor=" in link
        assert client.get("/transactions" + link).status_code == 200


def test_nothing_matching_says_so_with_a_clear_filters_link(customer):
    body = client_for(customer).get("/transactions", {"status": "PROCESSING"}).content.decode()
    assert "Nothing matches these filters" in body and 'data-testid="empty-clear"' in body
    assert "No transactions yet" not in body


def test_past_the_end_is_never_no_transactions_yet(customer):
    client = client_for(customer)
    for query in ({"page": 99}, {"page": 10**6}):
        body = client.get("/transactions", query).content.decode()
        assert "No transactions yet" not in body and 'data-testid="history-table"' in body
    cursor, page = None, None
    while True:
        page = account_history(account=customer, cursor=cursor)
        if not page["older"]:
            break
        cursor = page["older"]
    body = client.get("/transactions", {"cursor": cursor}).content.decode()
    assert "No transactions yet" not in body
    fresh = make_account()
    assert "No transactions yet" in client_for(fresh).get("/transactions").content.decode()


def test_a_scan_that_runs_out_of_budget_says_how_far_back_and_links_search_older():
    account = make_account()
    bulk_history(account, [make_account()], 1500, seed=32)
    client = client_for(account)
    body = client.get("/transactions", {"q": "nobody wrote this"}).content.decode()
    assert 'data-testid="history-searched"' in body and "Searched back to" in body
    found = re.search(r'href="([^"]+)" data-testid="search-older"', body)
    assert found, "no Search older link"
    link = html.unescape(found.group(1))
    assert "q=nobody+wrote+this" in link and "cursor=" in link
    assert client.get("/transactions" + link).status_code == 200


def test_rows_carry_receipt_links_balances_and_phone_labels(customer):
    body = client_for(customer).get("/transactions").content.decode()
    assert 'class="table table-cards' in body
    cells = re.findall(r"<td([^>]*)>", body)
    assert cells and all("data-label=" in attrs for attrs in cells)
    assert body.count('data-testid="receipt-link"') == 15
    assert re.search(r'data-testid="balance-after">₹', body)


def test_htmx_pages_render_the_partial_with_the_filters(customer):
    client = client_for(customer)
    older = account_history(account=customer)["older"]
    response = client.get("/transactions", {"cursor": older}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b'id="history"' in response.content
    assert b"history-filters" not in response.content  # the partial only
