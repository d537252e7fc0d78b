"""The payees API against the real embedded server: shapes, every refusal as JSON, another
customer's payee is 404, the name look-up limit reached through the API is 429 JSON, masking.
"""

from __future__ import annotations

import pytest
from bson import ObjectId
from django.test import override_settings

from accounts.models import Account, Role
from aegis.mongo import collection
from ledger.models import AuditLog
from payees.models import MAX_PAYEES, Payee
from tests.accounts.conftest import ApiClient, api_as
from tests.factories import make_account, make_user

pytestmark = pytest.mark.usefixtures("generous_limits")


@pytest.fixture
def generous_limits():
    with override_settings(AEGIS_RATELIMIT_GLOBAL="100000/15m", AEGIS_RATELIMIT_STRICT="100000/15m"):
        yield


@pytest.fixture
def asha():
    return make_account(user=make_user(name="Asha Verma"))


@pytest.fixture
def ravi():
    return make_account(user=make_user(name="Ravi Kumar"))


def refusal(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False and body["message"]
    if code:
        assert body["code"] == code
    if field:
        assert body["field"] == field
    return body


def add(client, account, nickname="Ravi"):
    return client.post("/api/payees", {"accountId": str(account.pk), "nickname": nickname})


def test_lookup_shows_the_masked_name_and_no_payee_yet(asha, ravi):
    response = api_as(asha.user).get(f"/api/payees/lookup?accountId={ravi.pk}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "accountId": str(ravi.pk), "name": "Ravi K.", "payee": None}
    assert "Kumar" not in response.content.decode()  # only the initial of the surname


def test_add_list_rename_remove_shapes(asha, ravi):
    client = api_as(asha.user)
    created = add(client, ravi, "  My   landlord ")
    assert created.status_code == 201
    payee = created.json()["payee"]
    assert set(payee) == {"id", "accountId", "nickname", "holderName", "createdAt"}
    assert (payee["accountId"], payee["nickname"], payee["holderName"]) == (str(ravi.pk), "My landlord", "Ravi K.")
    assert payee["createdAt"].endswith("+00:00")

    listed = client.get("/api/payees").json()
    assert listed == {"success": True, "payees": [payee]}
    found = client.get(f"/api/payees/lookup?accountId={ravi.pk}").json()
    assert found["payee"] == payee and found["name"] == "Ravi K."

    renamed = client.patch(f"/api/payees/{payee['id']}", {"nickname": "Rent"})
    assert renamed.status_code == 200
    assert renamed.json()["payee"] == {**payee, "nickname": "Rent"}

    removed = client.delete(f"/api/payees/{payee['id']}")
    assert removed.status_code == 204 and removed.content == b""
    assert client.get("/api/payees").json()["payees"] == []
    actions = [a["action"] for a in collection(AuditLog).find({"user_id": str(asha.user.pk)}).sort("created_at", 1)]
    assert actions == ["PAYEE_ADDED", "PAYEE_RENAMED", "PAYEE_REMOVED"]


def test_list_is_by_nickname(asha):
    client = api_as(asha.user)
    for name in ("Zara", "amit", "Bela"):
        assert add(client, make_account(user=make_user(name=f"{name} Shah")), name).status_code == 201
    assert [p["nickname"] for p in client.get("/api/payees").json()["payees"]] == ["Bela", "Zara", "amit"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "accountId"),
        ({"nickname": "Ravi"}, "accountId"),
        ({"accountId": "zz", "nickname": "Ravi"}, "accountId"),
        ({"accountId": 12, "nickname": "Ravi"}, "accountId"),
        ({"accountId": "RAVI", "nickname": ""}, "accountId"),
        ({"accountId": None, "nickname": "Ravi"}, "accountId"),
    ],
)
def test_add_refuses_a_bad_account_id(asha, body, field):
    refusal(api_as(asha.user).post("/api/payees", body), 400, field=field)
    assert Payee.objects.count() == 0


@pytest.mark.parametrize("nickname", [None, "", "   ", "x" * 41, 7, ["Ravi"], "tab\there\x00"])
def test_add_refuses_a_bad_nickname(asha, ravi, nickname):
    body = {"accountId": str(ravi.pk)} | ({} if nickname is None else {"nickname": nickname})
    refusal(api_as(asha.user).post("/api/payees", body), 400, field="nickname")
    assert Payee.objects.count() == 0


def test_add_refuses_unknown_own_funding_and_duplicate_accounts(bank, asha, ravi):
    client = api_as(asha.user)
    unknown = client.post("/api/payees", {"accountId": str(ObjectId()), "nickname": "Nobody"})
    refusal(unknown, 404, "recipient_not_found")
    refusal(add(client, asha), 400, "own_account", "accountId")
    funding = Account.objects.get(user=bank.system_user)  # the bank's funding account is no one's payee
    refusal(add(client, funding, "Bank"), 404, "recipient_not_found")
    assert add(client, ravi).status_code == 201
    body = refusal(add(client, ravi, "Again"), 400, field="accountId")
    assert "already your payee" in body["message"]
    assert Payee.objects.filter(owner=asha.user).count() == 1


def test_add_refuses_more_than_the_most_payees(asha, ravi):
    now = Payee._meta.get_field("created_at").default()
    collection(Payee).insert_many(
        [
            {"owner_id": asha.user.pk, "account_id": ObjectId(), "nickname": f"P{i:03}", "holder_name": "X Y.",
             "created_at": now, "updated_at": now}
            for i in range(MAX_PAYEES)
        ]
    )  # fmt: skip
    body = refusal(add(api_as(asha.user), ravi), 400, field="accountId")
    assert f"at most {MAX_PAYEES}" in body["message"]
    assert len(api_as(asha.user).get("/api/payees").json()["payees"]) == MAX_PAYEES


def test_lookup_refusals_are_json(asha):
    client = api_as(asha.user)
    refusal(client.get("/api/payees/lookup"), 400, field="accountId")
    refusal(client.get("/api/payees/lookup?accountId=not-an-id"), 400, field="accountId")
    refusal(client.get(f"/api/payees/lookup?accountId={ObjectId()}"), 404, "recipient_not_found")
    refusal(client.get(f"/api/payees/lookup?accountId={asha.pk}"), 400, "own_account")
    refusal(ApiClient().get(f"/api/payees/lookup?accountId={asha.pk}"), 401)


def test_another_customers_payee_is_not_found(asha, ravi):
    payee_id = add(api_as(asha.user), ravi).json()["payee"]["id"]
    intruder = api_as(ravi.user)
    for response in (
        intruder.patch(f"/api/payees/{payee_id}", {"nickname": "Mine now"}),
        intruder.delete(f"/api/payees/{payee_id}"),
        intruder.delete(f"/api/payees/{ObjectId()}"),
        intruder.delete("/api/payees/not-an-id"),
    ):
        refusal(response, 404, "not_found")
    assert intruder.get("/api/payees").json()["payees"] == []
    stored = Payee.objects.get(pk=ObjectId(payee_id))
    assert (stored.owner_id, stored.nickname) == (asha.user.pk, "Ravi")


def test_rename_refuses_a_bad_nickname_and_changes_nothing(asha, ravi):
    client = api_as(asha.user)
    payee_id = add(client, ravi).json()["payee"]["id"]
    for body in ({}, {"nickname": " "}, {"nickname": "x" * 41}, {"nickname": 5}):
        refusal(client.patch(f"/api/payees/{payee_id}", body), 400, field="nickname")
    assert Payee.objects.get(pk=ObjectId(payee_id)).nickname == "Ravi"


def test_name_lookup_limit_through_the_api_is_429_json(settings, asha, ravi):
    settings.AEGIS_RATELIMIT_NAME_LOOKUP = "3/1h"
    client = api_as(asha.user)
    strangers = [make_account(user=make_user(name=f"Stranger {i}")) for i in range(3)]
    assert add(client, ravi).status_code == 201  # 1: saving looks the name up
    for _ in range(4):  # a saved payee's name is already known: free
        assert client.get(f"/api/payees/lookup?accountId={ravi.pk}").status_code == 200
    assert client.get(f"/api/payees/lookup?accountId={strangers[0].pk}").status_code == 200  # 2
    assert client.get(f"/api/payees/lookup?accountId={ObjectId()}").status_code == 404  # 3: misses count
    limited = client.get(f"/api/payees/lookup?accountId={strangers[1].pk}")
    refusal(limited, 429, "rate_limited")
    assert int(limited["Retry-After"]) > 0
    assert "Stranger" not in limited.content.decode() and "S." not in limited.json()["message"]
    refusal(add(client, strangers[2], "New"), 429, "rate_limited")  # saving a new payee is a look-up too
    assert Payee.objects.filter(owner=asha.user).count() == 1
    # Another customer has their own allowance.
    assert api_as(ravi.user).get(f"/api/payees/lookup?accountId={asha.pk}").json()["name"] == "Asha V."


def test_staff_see_the_masked_name_too(asha):
    staff = make_user(role=Role.ADMIN, name="Staff Member")
    assert api_as(staff).get(f"/api/payees/lookup?accountId={asha.pk}").json()["name"] == "Asha V."


def test_payee_routes_are_in_the_openapi_document():
    paths = ApiClient().get("/api/openapi.json").json()["paths"]
    assert set(paths["/api/payees"]) == {"get", "post"}
    assert set(paths["/api/payees/{payee_id}"]) == {"patch", "delete"}
    assert "429" in paths["/api/payees/lookup"]["get"]["responses"]
