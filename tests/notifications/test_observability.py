"""Request ids, JSON log lines, /metrics and /readyz."""

import json
import logging
import re

import pytest
from django.test import Client

from accounts.auth import token_issue
from aegis.mongo import collection
from aegis.observability import JsonFormatter
from events.dispatcher import Dispatcher
from ledger.models import AuditLog
from tests.accounts.conftest import ApiClient
from tests.factories import make_user
from tests.notifications.conftest import events


def api_as(user) -> ApiClient:
    return ApiClient(token=token_issue(user=user))


def transfer_body(sender, receiver, amount="10.00", key="obs-1"):
    return {"fromAccount": str(sender.pk), "toAccount": str(receiver.pk), "amount": amount, "idempotencyKey": key}


def json_lines(caplog, logger: str) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger]


def test_request_id_is_kept_when_sane_and_generated_otherwise():
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="abc-123.x_y")["X-Request-ID"] == "abc-123.x_y"
    for bad in ("", "has space", "x" * 65, "<script>"):
        generated = Client().get("/healthz", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_request_id_reaches_the_audit_entry_and_the_outbox_event(funded_pair):
    sender, receiver = funded_pair
    response = api_as(sender.user).post(
        "/api/transactions", transfer_body(sender, receiver), HTTP_X_REQUEST_ID="req-from-client-1"
    )
    assert response.status_code == 201 and response["X-Request-ID"] == "req-from-client-1"
    txn_id = response.json()["transaction"]["_id"]
    assert collection(AuditLog).find_one({"transaction_id": txn_id})["request_id"] == "req-from-client-1"
    event = [e for e in events(aggregate_id=str(sender.pk)) if e["payload"]["transactionId"] == txn_id][0]
    assert event["payload"]["requestId"] == "req-from-client-1"


def test_transfer_page_passes_the_generated_request_id(funded_pair):
    sender, receiver = funded_pair
    client = Client()
    client.force_login(sender.user)
    form = {"to_account": str(receiver.pk), "amount": "12.00", "note": "", "idempotency_key": "page-obs-1"}
    reviewed = client.post("/transfer", form | {"step": "review"}).content.decode()
    token = re.search(r'name="review_token" value="([^"]+)"', reviewed).group(1)
    response = client.post("/transfer", form | {"step": "send", "review_token": token, "confirm_name": "on"})
    assert response.status_code == 302
    audit = collection(AuditLog).find_one({"action": "TRANSFER_SUCCESS"})
    assert audit["request_id"] == response["X-Request-ID"]


def test_one_json_line_per_request_and_per_transfer_without_secrets(funded_pair, caplog):
    sender, receiver = funded_pair
    token = token_issue(user=sender.user)
    caplog.set_level(logging.INFO)
    ApiClient(token=token).post(
        "/api/transactions", transfer_body(sender, receiver, key="log-1"), HTTP_X_REQUEST_ID="log-req-1"
    )
    ApiClient().post("/api/auth/login", {"email": sender.user.email, "password": "not the password 123"})
    requests = json_lines(caplog, "aegis.request")
    assert requests[0] | {"duration_ms": 0, "ts": ""} == {
        "ts": "",
        "level": "INFO",
        "logger": "aegis.request",
        "message": "POST /api/transactions 201",
        "method": "POST",
        "path": "/api/transactions",
        "status": 201,
        "duration_ms": 0,
        "request_id": "log-req-1",
        "user_id": str(sender.user.pk),
    }
    assert requests[1]["status"] == 401 and requests[1]["user_id"] == ""
    [outcome] = json_lines(caplog, "aegis.transfers")
    assert outcome["outcome"] == "completed" and outcome["status"] == "COMPLETED"
    assert outcome["request_id"] == "log-req-1" and outcome["amount_paise"] == 1000
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert token not in everything and "not the password" not in everything and "Bearer" not in everything


def test_json_formatter_drops_secret_looking_fields():
    record = logging.LogRecord("x", logging.INFO, "", 0, "hello %s", ("world",), None)
    record.password = "hunter2"  # noqa: S105
    record.authorization = "Bearer abc"
    record.session_key = "s"
    record.amount = 5
    from django.test import RequestFactory

    record.request = RequestFactory().get("/reset?token=s3cr3t", HTTP_AUTHORIZATION="Bearer abc")
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world" and line["amount"] == 5
    assert not {"password", "authorization", "session_key"} & set(line)
    assert line["request"] == "GET /reset" and "s3cr3t" not in json.dumps(line)


# --- /metrics -------------------------------------------------------------------------------------


def sample(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def admin_client(bank):
    client = Client()
    client.force_login(bank.admin_user)
    return client


def test_metrics_are_for_admins_or_a_scraper_token(settings, bank):
    assert Client().get("/metrics").status_code == 302  # to the login page
    user_client = Client()
    user_client.force_login(make_user())
    assert user_client.get("/metrics").status_code == 403
    settings.AEGIS_METRICS_TOKEN = "a-long-scraper-token-1234"  # noqa: S105
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer a-long-scraper-token-1234").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 302
    assert Client().post("/metrics", HTTP_AUTHORIZATION="Bearer a-long-scraper-token-1234").status_code == 405


def test_metrics_move_when_transfers_complete_or_fail(admin_client, funded_pair):
    sender, receiver = funded_pair
    Dispatcher().run_once()  # the funding: aegis_transfers counts settled transfers as their events are delivered
    before = admin_client.get("/metrics")
    assert before["Content-Type"].startswith("text/plain")
    before = before.content.decode()
    client = api_as(sender.user)
    assert client.post("/api/transactions", transfer_body(sender, receiver, key="m-ok")).status_code == 201
    assert client.post("/api/transactions", transfer_body(sender, receiver, "9000", key="m-fail")).status_code == 422
    after = admin_client.get("/metrics").content.decode()
    for outcome in ("completed", "failed"):
        assert (
            sample(after, "aegis_transfer_outcomes_total", outcome=outcome)
            == sample(before, "aegis_transfer_outcomes_total", outcome=outcome) + 1
        )
        assert (
            sample(after, "aegis_transfer_duration_seconds_count", outcome=outcome)
            == sample(before, "aegis_transfer_duration_seconds_count", outcome=outcome) + 1
        )
    assert (
        sample(after, "aegis_outbox_events", status="PENDING")
        == sample(before, "aegis_outbox_events", status="PENDING") + 2
    )
    assert sample(after, "aegis_outbox_oldest_pending_age_seconds") > 0
    assert "aegis_transaction_conflict_retries_total" in after

    Dispatcher().run_once()
    drained = admin_client.get("/metrics").content.decode()
    assert sample(drained, "aegis_outbox_events", status="PENDING") == 0
    assert sample(drained, "aegis_outbox_oldest_pending_age_seconds") == 0
    for status in ("COMPLETED", "FAILED"):
        assert sample(drained, "aegis_transfers", status=status) == sample(before, "aegis_transfers", status=status) + 1


def test_rate_limited_requests_are_counted(settings, admin_client):
    before = sample(admin_client.get("/metrics").content.decode(), "aegis_rate_limited_requests_total", group="strict")
    settings.AEGIS_RATELIMIT_STRICT = "1/15m"
    for _ in range(3):
        ApiClient().post("/api/auth/login", {"email": "x@example.com", "password": "whatever it is 12"})
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"
    after = sample(admin_client.get("/metrics").content.decode(), "aegis_rate_limited_requests_total", group="strict")
    assert after >= before + 2


# --- /readyz ----------------------------------------------------------------------------------------


def test_readyz_checks_the_database_and_optionally_the_dispatcher(settings):
    body = Client().get("/readyz").json()
    assert body == {"status": "ok", "database": "ok", "dispatcher": "absent", "dispatcherRequired": False}
    settings.AEGIS_REQUIRE_DISPATCHER = "true"
    response = Client().get("/readyz")
    assert response.status_code == 503 and response.json()["dispatcher"] == "absent"
    Dispatcher(name="probe-dispatcher").heartbeat(force=True)
    response = Client().get("/readyz")
    assert response.status_code == 200 and response.json()["dispatcher"] == "ok"
