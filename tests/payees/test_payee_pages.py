"""The Payees page against the real server: the list, add with confirmation of payee (check, then
confirm), rename and remove with a confirmation step, as plain posts (PRG, real 4xx statuses)
and as htmx swaps of the `payees-main` partial; refusals lose nothing and never 500.
"""

from __future__ import annotations

import json
import re

import pytest
from bson import ObjectId
from django.test import Client

from aegis.mongo import collection
from ledger.models import AuditLog
from payees.models import Payee
from payees.services import payee_add
from tests.factories import make_account, make_user
from tests.pages.conftest import client_for, htmx_client_for


@pytest.fixture(autouse=True)
def _generous_limits(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"


@pytest.fixture
def asha():
    return make_account(user=make_user(name="Asha Verma"))


@pytest.fixture
def ravi():
    return make_account(user=make_user(name="Ravi Kumar"))


def html(response, status: int = 200) -> str:
    assert response.status_code == status, (response.status_code, response.content[:400])
    return response.content.decode()


def check(client, account_id, nickname="Ravi"):
    return client.post("/payees/new", {"step": "check", "account_id": str(account_id), "nickname": nickname})


def confirm(client, account_id, nickname="Ravi"):
    return client.post("/payees/new", {"step": "confirm", "account_id": str(account_id), "nickname": nickname})


def test_empty_state_and_the_add_form(asha):
    page = html(client_for(asha.user).get("/payees"))
    assert 'data-testid="payees-empty"' in page and "No payees yet." in page
    assert 'data-testid="add-form"' in page and 'action="/payees/new"' in page
    assert 'data-testid="payees-table"' not in page
    assert 'href="/payees" aria-current="page"' in page  # the nav link is current


def test_check_shows_the_masked_holder_and_saves_nothing_until_confirmed(asha, ravi):
    client = client_for(asha.user)
    page = html(check(client, ravi.pk, "  My   landlord "))
    assert "This account is held by" in page and 'data-testid="confirm-holder">Ravi K.<' in page
    assert "Kumar" not in page
    assert f'name="account_id" value="{ravi.pk}"' in page and 'name="nickname" value="My landlord"' in page
    assert Payee.objects.count() == 0

    saved = confirm(client, ravi.pk, "My landlord")
    assert saved.status_code == 302 and saved["Location"] == "/payees"  # POST -> redirect -> GET
    payee = Payee.objects.get(owner=asha.user)
    assert (payee.nickname, payee.holder_name, payee.account_id) == ("My landlord", "Ravi K.", ravi.pk)
    page = html(client.get("/payees"))
    assert "Saved “My landlord” (Ravi K.) as a payee." in page  # the toast
    row = re.search(r'<tr data-payee="[0-9a-f]{24}".*?</tr>', page, re.S).group(0)
    assert 'data-label="Nickname"' in row and "My landlord" in row and "Ravi K." in row and str(ravi.pk) in row
    assert f'href="/transfer?payee={payee.pk}"' in row
    assert 'class="table table-cards"' in page and "payees-empty" not in page


def test_change_goes_back_to_the_form_with_the_values_kept(asha, ravi):
    client = client_for(asha.user)
    page = html(client.post("/payees/new", {"step": "edit", "account_id": str(ravi.pk), "nickname": "Ravi"}))
    assert 'data-testid="add-form"' in page
    assert f'value="{ravi.pk}"' in page and 'value="Ravi"' in page
    assert Payee.objects.count() == 0


@pytest.mark.parametrize(
    ("account_id", "nickname", "status", "message"),
    [
        ("", "Ravi", 400, "24-character account ID"),
        ("not-an-id", "Ravi", 400, "24-character account ID"),
        (str(ObjectId()), "Ravi", 404, "No Aegis account has that ID"),
        ("RAVI", "", 400, "Give this payee a nickname"),  # the nickname is judged first: no look-up spent
        ("RAVI", "x" * 41, 400, "at most 40"),
        ("ASHA", "Me", 400, "your own account"),
    ],
)
def test_add_refusals_keep_what_was_typed(asha, ravi, account_id, nickname, status, message):
    account_id = {"RAVI": str(ravi.pk), "ASHA": str(asha.pk)}.get(account_id, account_id)
    for step in ("check", "confirm"):
        page = html(
            client_for(asha.user).post("/payees/new", {"step": step, "account_id": account_id, "nickname": nickname}),
            status,
        )
        assert message in page and 'data-testid="add-form"' in page
        assert f'value="{account_id}"' in page or not account_id
    assert Payee.objects.count() == 0


def test_an_existing_payee_is_refused_at_check(asha, ravi):
    payee_add(user=asha.user, account_id=str(ravi.pk), nickname="Ravi")
    page = html(check(client_for(asha.user), ravi.pk, "Again"), 400)
    assert "already your payee “Ravi”" in page
    assert Payee.objects.count() == 1


def test_a_bad_step_is_400_and_saves_nothing(asha, ravi):
    response = client_for(asha.user).post("/payees/new", {"step": "skip", "account_id": str(ravi.pk), "nickname": "R"})
    html(response, 400)
    assert Payee.objects.count() == 0


def test_the_name_lookup_limit_on_the_page_is_429_with_a_plain_message(settings, asha, ravi):
    settings.AEGIS_RATELIMIT_NAME_LOOKUP = "2/1h"
    client = client_for(asha.user)
    strangers = [make_account(user=make_user(name=f"Stranger {i}")) for i in range(2)]
    html(check(client, ravi.pk))  # 1
    html(check(client, strangers[0].pk))  # 2
    limited = check(client, strangers[1].pk)
    page = html(limited, 429)
    assert int(limited["Retry-After"]) > 0
    assert "checked many account names" in page and "Stranger" not in page
    assert f'value="{strangers[1].pk}"' in page  # what was typed is kept for later


def test_rename_with_and_without_errors(asha, ravi):
    payee = payee_add(user=asha.user, account_id=str(ravi.pk), nickname="Ravi")
    client = client_for(asha.user)
    page = html(client.get(f"/payees/{payee.pk}/rename"))
    assert 'data-testid="rename-form"' in page and 'value="Ravi"' in page and "autofocus" in page
    page = html(client.post(f"/payees/{payee.pk}/rename", {"nickname": "   "}), 400)
    assert "Give this payee a nickname" in page
    assert Payee.objects.get(pk=payee.pk).nickname == "Ravi"
    done = client.post(f"/payees/{payee.pk}/rename", {"nickname": "Rent"})
    assert done.status_code == 302 and done["Location"] == "/payees"
    assert Payee.objects.get(pk=payee.pk).nickname == "Rent"
    assert "Renamed “Ravi” to “Rent”." in html(client.get("/payees"))


def test_remove_asks_first_then_removes(asha, ravi):
    payee = payee_add(user=asha.user, account_id=str(ravi.pk), nickname="Ravi")
    client = client_for(asha.user)
    page = html(client.get(f"/payees/{payee.pk}/remove"))
    assert "Remove “Ravi”?" in page and 'data-testid="remove-confirm"' in page
    assert Payee.objects.filter(pk=payee.pk).exists()  # asking removes nothing
    done = client.post(f"/payees/{payee.pk}/remove")
    assert done.status_code == 302 and done["Location"] == "/payees"
    assert not Payee.objects.filter(pk=payee.pk).exists()
    page = html(client.get("/payees"))
    assert "Removed “Ravi” from your payees." in page and "payees-empty" in page
    actions = [a["action"] for a in collection(AuditLog).find({"user_id": str(asha.user.pk)}).sort("created_at", 1)]
    assert actions == ["PAYEE_ADDED", "PAYEE_REMOVED"]


def test_another_customers_payee_is_404_and_untouched(asha, ravi):
    payee = payee_add(user=asha.user, account_id=str(ravi.pk), nickname="Ravi")
    intruder = client_for(ravi.user)
    for method, path in (
        ("get", f"/payees/{payee.pk}/rename"),
        ("post", f"/payees/{payee.pk}/rename"),
        ("get", f"/payees/{payee.pk}/remove"),
        ("post", f"/payees/{payee.pk}/remove"),
        ("get", "/payees/not-an-id/remove"),
    ):
        response = getattr(intruder, method)(path, {"nickname": "Mine"} if method == "post" else None)
        assert response.status_code == 404, (method, path)
    assert 'data-testid="payee-row"' not in html(intruder.get("/payees"))
    assert Payee.objects.get(pk=payee.pk).nickname == "Ravi"


def test_htmx_add_swaps_the_partial_and_sends_the_toast(asha, ravi):
    client = htmx_client_for(asha.user)
    checked = check(client, ravi.pk)
    page = html(checked)
    assert page.lstrip().startswith('<div id="payees-main"') and "<html" not in page
    assert 'data-testid="confirm-holder">Ravi K.<' in page and checked["Vary"].find("HX-Request") >= 0
    saved = confirm(client, ravi.pk)
    page = html(saved)  # no redirect: the fresh partial
    assert 'data-testid="payee-row"' in page and 'data-testid="add-form"' in page
    toasts = json.loads(saved["HX-Trigger"])["aegis:toasts"]["items"]
    assert toasts == [{"level": "success", "text": "Saved “Ravi” (Ravi K.) as a payee."}]


def test_htmx_refusals_answer_200_with_the_reason_in_the_partial(asha):
    # htmx swaps only 2xx answers; a plain post of the same gets 404 (above).
    page = html(check(htmx_client_for(asha.user), ObjectId()))
    assert "No Aegis account has that ID" in page and page.lstrip().startswith('<div id="payees-main"')


def test_htmx_rename_and_remove(asha, ravi):
    payee = payee_add(user=asha.user, account_id=str(ravi.pk), nickname="Ravi")
    client = htmx_client_for(asha.user)
    assert 'data-testid="payee-remove"' in html(client.get(f"/payees/{payee.pk}/remove"))
    renamed = client.post(f"/payees/{payee.pk}/rename", {"nickname": "Rent"})
    assert ">Rent<" in html(renamed)
    assert json.loads(renamed["HX-Trigger"])["aegis:toasts"]["items"][0]["text"] == "Renamed “Ravi” to “Rent”."
    removed = client.post(f"/payees/{payee.pk}/remove")
    assert 'data-testid="payees-empty"' in html(removed)


def test_anonymous_is_sent_to_log_in():
    response = Client().get("/payees")
    assert response.status_code == 302 and response["Location"].startswith("/login")


def test_the_list_says_when_it_is_full(settings, asha, ravi):
    now = Payee._meta.get_field("created_at").default()
    docs = [
        {"owner_id": asha.user.pk, "account_id": ObjectId(), "nickname": f"P{i:03}", "holder_name": "X Y.",
         "created_at": now, "updated_at": now}
        for i in range(100)
    ]  # fmt: skip
    collection(Payee).insert_many(docs)
    page = html(client_for(asha.user).get("/payees"))
    assert 'data-testid="payees-full"' in page and 'data-testid="add-form"' not in page
    assert page.count('data-testid="payee-row"') == 100
    # Posting anyway is refused by the service, not only hidden by the page.
    assert "at most 100 payees" in html(confirm(client_for(asha.user), ravi.pk), 400)
