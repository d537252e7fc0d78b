"""A client's whole journey over HTTP, as the seed's API describes it (JSON bodies, Bearer tokens).

Register, log in, open an account, get funded by the system user, transfer with a key, replay
it, retry a failed one, read paginated history; then an admin freezes, lists, filters and reads
stats. Money is checked at the end with the reconciliation the operators run.
"""

import json

import pytest
from django.test import override_settings

from accounts.services import system_bootstrap
from events.dispatcher import Dispatcher
from ledger.reconcile import ledger_reconcile
from tests.accounts.conftest import ApiClient
from tests.factories import enrol_totp, totp_code

pytestmark = pytest.mark.usefixtures("generous_limits")


@pytest.fixture
def generous_limits():
    with override_settings(AEGIS_RATELIMIT_GLOBAL="10000/15m", AEGIS_RATELIMIT_STRICT="10000/15m"):
        yield


@pytest.fixture
def bank(tmp_path):
    path = tmp_path / "credentials.json"
    result = system_bootstrap(credentials_path=path)
    return result, json.loads(path.read_text())


def login(email: str, password: str, otp: str | None = None) -> ApiClient:
    body = {"email": email, "password": password} | ({"otp": otp} if otp else {})
    response = ApiClient().post("/api/auth/login", body)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True and body["user"]["email"] == email
    return ApiClient(token=body["token"])


def register(name: str, email: str) -> ApiClient:
    password = "a long and unusual passphrase 7"
    response = ApiClient().post("/api/auth/register", {"name": name, "email": email, "password": password})
    assert response.status_code == 201, response.content
    assert response.json()["user"]["role"] == "USER"
    return login(email, password)


def open_account(client: ApiClient) -> str:
    response = client.post("/api/accounts")
    assert response.status_code == 201
    return response.json()["account"]["_id"]


def balance(client: ApiClient, account_id: str):
    response = client.get(f"/api/accounts/balance/{account_id}")
    assert response.status_code == 200
    return response.json()["balance"]


def test_the_whole_seed_flow_over_http(bank):
    result, credentials = bank
    asha = register("Asha Rao", "asha@example.com")
    ravi = register("Ravi Iyer", "ravi@example.com")
    asha_acc, ravi_acc = open_account(asha), open_account(ravi)

    # The system user funds Asha (and a replay of the funding moves nothing).
    system = login(credentials["system"]["email"], credentials["system"]["password"])
    funding = {"toAccount": asha_acc, "amount": "5000.00", "idempotencyKey": "fund-asha-1", "note": "Welcome"}
    response = system.post("/api/transactions/system/initial-funds", funding)
    assert response.status_code == 201, response.content
    funded = response.json()["transaction"]
    assert funded["kind"] == "SYSTEM_FUNDING" and funded["status"] == "COMPLETED" and funded["amount"] == 5000
    assert system.post("/api/transactions/system/initial-funds", funding).status_code == 200
    assert balance(asha, asha_acc) == 5000

    # A transfer with a key: 201, the seed's shape, amounts in rupees.
    transfer = {
        "fromAccount": asha_acc,
        "toAccount": ravi_acc,
        "amount": 1500.5,
        "idempotencyKey": "txn-20260415-001",
        "note": "Wallet top-up",
    }
    response = asha.post("/api/transactions", transfer)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["success"] is True and body["message"] == "Transaction processed" and body["replayed"] is False
    txn = body["transaction"]
    assert {k: txn[k] for k in ("fromAccount", "toAccount", "amount", "status", "retryCount", "failureReason")} == {
        "fromAccount": asha_acc,
        "toAccount": ravi_acc,
        "amount": 1500.5,
        "status": "COMPLETED",
        "retryCount": 0,
        "failureReason": None,
    }
    assert txn["idempotencyKey"] == "txn-20260415-001" and txn["note"] == "Wallet top-up"
    assert "fingerprint" not in txn and "attempt_id" not in txn

    # The replay answers 200 with the original transaction; nothing moves twice.
    replay = asha.post("/api/transactions", transfer)
    assert replay.status_code == 200
    assert replay.json()["replayed"] is True and replay.json()["transaction"]["_id"] == txn["_id"]
    assert balance(asha, asha_acc) == 3499.5 and balance(ravi, ravi_acc) == 1500.5

    # Same key, different amount: 422, never applied.
    reused = asha.post("/api/transactions", {**transfer, "amount": 1})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"

    # Too much: FAILED with the record in the error; a retry after funding completes it.
    big = {"fromAccount": asha_acc, "toAccount": ravi_acc, "amount": 4000, "idempotencyKey": "big-1"}
    failed = asha.post("/api/transactions", big)
    assert failed.status_code == 422
    failed_body = failed.json()
    assert failed_body["success"] is False and failed_body["code"] == "insufficient_funds"
    assert failed_body["transaction"]["status"] == "FAILED"
    assert failed_body["transaction"]["retryCount"] == 1
    assert failed_body["transaction"]["failureReason"] == "Insufficient funds in the sending account."
    top_up = {"toAccount": asha_acc, "amount": 1000, "idempotencyKey": "fund-asha-2"}
    assert system.post("/api/transactions/system/initial-funds", top_up).status_code == 201
    retried = asha.post("/api/transactions", big)
    assert retried.status_code == 201
    assert retried.json()["transaction"]["_id"] == failed_body["transaction"]["_id"]
    assert retried.json()["transaction"]["status"] == "COMPLETED"
    assert retried.json()["transaction"]["retryCount"] == 1
    assert balance(asha, asha_acc) == 499.5

    # Paginated history from the ledger, newest first.
    page1 = asha.get(f"/api/transactions/{asha_acc}?page=1&limit=2").json()
    assert (page1["page"], page1["limit"], page1["total"], page1["hasNextPage"]) == (1, 2, 4, True)
    first = page1["transactions"][0]
    assert (first["type"], first["direction"], first["amount"], first["balanceAfter"]) == ("DEBIT", "OUT", 4000, 499.5)
    assert first["transaction"]["status"] == "COMPLETED" and first["transaction"]["idempotencyKey"] == "big-1"
    page2 = asha.get(f"/api/transactions/{asha_acc}?page=2&limit=2").json()
    assert page2["hasNextPage"] is False
    assert [r["direction"] for r in page2["transactions"]] == ["OUT", "IN"]
    assert page2["transactions"][-1]["transaction"]["note"] == "Welcome"
    assert "idempotencyKey" not in page2["transactions"][-1]["transaction"]  # the system's key, not hers
    capped = asha.get(f"/api/transactions/{asha_acc}?limit=500").json()
    assert capped["limit"] == 50 and len(capped["transactions"]) == 4
    # Ravi cannot read Asha's history: the same 404 as an unknown account.
    assert ravi.get(f"/api/transactions/{asha_acc}").status_code == 404

    # The admin (enrolled in two-factor sign-in; staff need the code): freeze Ravi, list users, filter
    # transactions, read stats.
    secret = enrol_totp(result.admin_user)
    admin = login(credentials["admin"]["email"], credentials["admin"]["password"], otp=totp_code(secret))
    assert admin.patch(f"/api/admin/freeze/{ravi_acc}").json()["account"]["status"] == "FROZEN"
    to_frozen = asha.post(
        "/api/transactions", {"fromAccount": asha_acc, "toAccount": ravi_acc, "amount": 1, "idempotencyKey": "f-1"}
    )
    assert to_frozen.status_code == 422 and to_frozen.json()["code"] == "recipient_unavailable"
    users = admin.get("/api/admin/users?limit=10").json()
    # Asha, Ravi and the admin; never the system user. Keyset pages: no total, no next page here.
    assert len(users["users"]) == 3 and users["total"] is None and users["nextCursor"] is None
    by_email = {u["email"]: u for u in users["users"]}
    assert by_email["ravi@example.com"]["account"]["status"] == "FROZEN"
    assert by_email["asha@example.com"]["account"]["balance"] == 499.5
    assert by_email[credentials["admin"]["email"]]["account"] is None

    failed_rows = admin.get(f"/api/admin/transactions?status=FAILED&accountId={asha_acc}").json()
    assert [t["_id"] for t in failed_rows["transactions"]] == [to_frozen.json()["transaction"]["_id"]]
    everything = admin.get("/api/admin/transactions?limit=50").json()
    assert len(everything["transactions"]) == 5 and everything["hasNextPage"] is False
    assert all("idempotencyKey" not in t and "fingerprint" not in t for t in everything["transactions"])

    # Stats come from the rollups, as of the last delivered outbox event: deliver them first.
    dispatcher = Dispatcher()
    while any(dispatcher.run_once().values()):
        pass
    stats = admin.get("/api/admin/stats").json()["stats"]
    assert stats["users"] == 3
    assert stats["transactions"] == 5
    assert stats["byStatus"] == {"INITIATED": 0, "PROCESSING": 0, "COMPLETED": 4, "FAILED": 1}
    assert stats["completedVolume"] == 5500.5  # user transfers only, not system funding
    assert stats["failures"] == 1

    # Users are not staff; logout revokes the token.
    assert asha.get("/api/admin/stats").status_code == 403
    assert asha.post("/api/auth/logout").status_code == 200
    assert asha.get("/api/accounts").status_code == 401
    report = ledger_reconcile()
    assert report.ok, report.violations
