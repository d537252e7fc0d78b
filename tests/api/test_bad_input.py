"""Bad input to the transfer and staff routes: a 4xx naming the field, never a 500, nothing written."""

import json

import pytest
from bson import ObjectId
from django.test import override_settings

from accounts.models import AccountStatus, Role
from accounts.services import system_bootstrap
from ledger.models import AuditLog
from tests.accounts.conftest import api_as
from tests.factories import make_account, make_user
from transfers.models import Transaction
from transfers.services import system_fund


@pytest.fixture(autouse=True)
def generous_limits():
    with override_settings(
        AEGIS_RATELIMIT_GLOBAL="10000/15m",
        AEGIS_RATELIMIT_STRICT="10000/15m",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fixtures only; bcrypt is slow
    ):
        yield


@pytest.fixture
def bank(tmp_path):
    return system_bootstrap(credentials_path=tmp_path / "credentials.json")


@pytest.fixture
def pair(bank):
    sender, receiver = make_account(), make_account()
    for key in ("s", "s2"):  # ₹20,000, so a transfer at the ₹10,000 cap can go through
        system_fund(actor=bank.system_user, to_account_id=str(sender.pk), amount_paise=1_000_000, idempotency_key=key)
    return sender, receiver


def payload(sender, receiver, **changes):
    body = {"fromAccount": str(sender.pk), "toAccount": str(receiver.pk), "amount": 10, "idempotencyKey": "k-1"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": -5}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": "0.00"}, "amount"),
        ({"amount": 10000.01}, "amount"),
        ({"amount": 10.001}, "amount"),
        ({"amount": "10.001"}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"amount": " 5"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "Infinity"}, "amount"),
        ({"amount": 10**400}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": [10]}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": ...}, "amount"),
        ({"fromAccount": ...}, "fromAccount"),
        ({"fromAccount": 12}, "fromAccount"),
        ({"fromAccount": "not-an-id"}, "fromAccount"),
        ({"toAccount": ...}, "toAccount"),
        ({"toAccount": {"$ne": None}}, "toAccount"),
        ({"idempotencyKey": ...}, "idempotencyKey"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        ({"idempotencyKey": "   "}, "idempotencyKey"),
        ({"idempotencyKey": "k" * 101}, "idempotencyKey"),
        ({"idempotencyKey": 123}, "idempotencyKey"),
        ({"idempotencyKey": "bad\x00key"}, "idempotencyKey"),
        ({"note": "n" * 141}, "note"),
        ({"note": 5}, "note"),
    ],
)
def test_a_bad_transfer_field_is_400_naming_it(pair, changes, field):
    sender, receiver = pair
    response = api_as(sender.user).post("/api/transactions", payload(sender, receiver, **changes))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False and body["field"] == field and field in body["message"]
    assert Transaction.objects.exclude(idempotency_key__in=["s", "s2"]).count() == 0


def test_limits_that_are_fine(pair):
    sender, receiver = pair
    client = api_as(sender.user)
    ok = client.post(
        "/api/transactions", payload(sender, receiver, amount="10000", idempotencyKey="k" * 100, note="n" * 140)
    )
    assert ok.status_code == 201, ok.content
    assert ok.json()["transaction"]["amount"] == 10000
    ok = client.post("/api/transactions", payload(sender, receiver, amount=0.01, idempotencyKey="k-2", note=None))
    assert ok.status_code == 201 and ok.json()["transaction"]["amount"] == 0.01


@pytest.mark.parametrize(
    ("raw", "content_type", "code"),
    [
        ("{not json", "application/json", "malformed_json"),
        ("[1, 2]", "application/json", "malformed_json"),
        ('{"amount": NaN}', "application/json", "malformed_json"),
        ("null", "application/json", "malformed_json"),
        ("\xff\xfe", "application/json", "malformed_json"),
        ("amount=5", "application/x-www-form-urlencoded", "unsupported_content_type"),
        ("{}", "text/plain", "unsupported_content_type"),
    ],
)
def test_malformed_bodies_and_wrong_content_types_are_400(pair, raw, content_type, code):
    sender, _ = pair
    response = api_as(sender.user).generic("POST", "/api/transactions", raw, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_a_foreign_sender_account_is_404(pair):
    sender, receiver = pair
    foreign = api_as(sender.user).post("/api/transactions", payload(receiver, sender))
    assert foreign.status_code == 404 and foreign.json()["message"] == "Account not found."


def test_unknown_frozen_and_closed_recipients_get_one_answer(pair):
    """No answer tells a sender which accounts exist or are frozen (issue 13, item 9)."""
    sender, receiver = pair
    frozen = make_account(status=AccountStatus.FROZEN)
    closed = make_account(status=AccountStatus.CLOSED)
    client = api_as(sender.user)
    answers = []
    for key, to in (("u", str(ObjectId())), ("f", str(frozen.pk)), ("c", str(closed.pk))):
        response = client.post("/api/transactions", payload(sender, receiver, toAccount=to, idempotencyKey=key))
        body = response.json()
        answers.append(
            (
                response.status_code,
                body["code"],
                body["message"],
                sorted(body),
                body["transaction"]["failureCode"],
                body["transaction"]["failureReason"],
            )
        )
    assert len(set(map(str, answers))) == 1, answers
    assert answers[0][:3] == (422, "recipient_unavailable", "This account cannot receive payments.")
    # The real reason is kept for staff: in the audit entry and on the record (never serialized).
    reasons = {a.details["reason"] for a in AuditLog.objects.filter(action="TRANSFER_FAILED")}
    assert reasons == {"receiver_unknown", "receiver_frozen", "receiver_closed"}
    assert "failure_detail" not in str(answers)


def test_duplicate_key_with_other_payload_is_422_and_self_transfer_is_422(pair):
    sender, receiver = pair
    client = api_as(sender.user)
    assert client.post("/api/transactions", payload(sender, receiver)).status_code == 201
    assert client.post("/api/transactions", payload(sender, receiver, amount=11)).json()["code"] == (
        "idempotency_key_reused"
    )
    response = client.post("/api/transactions", payload(sender, sender, idempotencyKey="self"))
    assert response.status_code == 422 and response.json()["code"] == "self_transfer"


def test_retries_run_out_after_three_failures_and_the_record_is_in_the_body(pair):
    sender, receiver = pair
    receiver.status = AccountStatus.FROZEN
    receiver.save()
    client = api_as(sender.user)
    for attempt in (1, 2, 3):
        response = client.post("/api/transactions", payload(sender, receiver, idempotencyKey="frozen"))
        assert response.status_code == 422
        assert response.json()["transaction"]["retryCount"] == attempt
    response = client.post("/api/transactions", payload(sender, receiver, idempotencyKey="frozen"))
    assert response.status_code == 422 and response.json()["code"] == "retries_exhausted"
    assert response.json()["transaction"]["status"] == "FAILED"


def test_funding_is_for_the_system_user_only_and_validated(bank, pair):
    sender, receiver = pair
    body = {"toAccount": str(receiver.pk), "amount": 5, "idempotencyKey": "f"}
    assert api_as(sender.user).post("/api/transactions/system/initial-funds", body).status_code == 403
    system = api_as(bank.system_user)
    bad = system.post("/api/transactions/system/initial-funds", {**body, "amount": "5.555"})
    assert bad.status_code == 400 and bad.json()["field"] == "amount"
    unknown = system.post("/api/transactions/system/initial-funds", {**body, "toAccount": str(ObjectId())})
    assert unknown.status_code == 422 and unknown.json()["code"] == "recipient_unavailable"


@pytest.mark.parametrize(
    "query", ["page=0", "page=abc", "page=-1", "limit=0", "limit=1.5", "page=100001", "limit=1001"]
)
def test_bad_paging_is_400(pair, query):
    sender, _ = pair
    response = api_as(sender.user).get(f"/api/transactions/{sender.pk}?{query}")
    assert response.status_code == 400
    assert response.json()["field"] == query.split("=")[0]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=DONE", "status"),
        ("accountId=xyz", "accountId"),
        ("limit=x", "limit"),
        ("accountId=" + "a" * 24 + "%0A", "accountId"),
        ("page=5%0A", "page"),
        ("page=" + "9" * 30, "page"),
    ],
)
def test_bad_admin_filters_are_400(query, field):
    admin = make_user(role=Role.ADMIN)
    response = api_as(admin).get(f"/api/admin/transactions?{query}")
    assert response.status_code == 400 and response.json()["field"] == field


def test_admin_routes_are_admin_only(pair):
    sender, _ = pair
    for path in ("/api/admin/users", "/api/admin/transactions", "/api/admin/stats"):
        assert api_as(sender.user).get(path).status_code == 403


def test_docs_page_is_served_locally(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui-bundle.js" in html and "/api/openapi.json" in html
    assert "http://" not in html and "https://" not in html  # no CDN
    assert json.loads(client.get("/api/openapi.json").content)["openapi"].startswith("3.1")
