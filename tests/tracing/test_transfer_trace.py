"""A transfer's trace, end to end, on the real embedded server: the request's server span, the
engine's step spans under it, a span per MongoDB command under those; the trace id in the JSON
log lines, the audit entry and the outbox event; the dispatcher's spans continuing that trace."""

import io
import json
import logging

import pytest
from django.test import override_settings
from opentelemetry.trace import SpanKind

from aegis.mongo import collection
from aegis.observability import JsonFormatter
from events.dispatcher import Dispatcher
from events.models import OutboxEvent
from ledger.models import AuditLog
from tests.accounts.conftest import ApiClient
from tests.factories import PASSWORD, make_account, make_user

pytestmark = pytest.mark.usefixtures("generous_limits")


@pytest.fixture
def generous_limits():
    with override_settings(AEGIS_RATELIMIT_GLOBAL="10000/15m", AEGIS_RATELIMIT_STRICT="10000/15m"):
        yield


@pytest.fixture
def json_log():
    """Every log line of the test as the production formatter writes it (at emit time, so inside
    the spans that were current when it was logged)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    root.removeHandler(handler)


@pytest.fixture
def transfer(fund, spans, json_log):
    """One API transfer between two funded accounts; returns (response body, its spans)."""
    sender_user = make_user(name="Asha Rao")
    sender, receiver = make_account(user=sender_user), make_account()
    fund(sender, 500_00)
    login = ApiClient().post("/api/auth/login", {"email": sender_user.email, "password": PASSWORD})
    assert login.status_code == 200, login.content
    client = ApiClient(token=login.json()["token"])
    spans.clear()
    response = client.post(
        "/api/transactions",
        {"fromAccount": str(sender.pk), "toAccount": str(receiver.pk), "amount": 120.5, "idempotencyKey": "trace-1"},
    )
    assert response.status_code == 201, response.content
    return response.json()["transaction"], list(spans.get_finished_spans())


def _hex(trace_id: int) -> str:
    return format(trace_id, "032x")


def _one(spans, name):
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, (name, [span.name for span in spans])
    return found[0]


def _children(spans, parent):
    return [span for span in spans if span.parent is not None and span.parent.span_id == parent.context.span_id]


def _server_span(spans):
    servers = [span for span in spans if span.kind == SpanKind.SERVER]
    assert len(servers) == 1, [span.name for span in servers]
    return servers[0]


def test_a_transfer_is_one_trace_from_the_request_down_to_each_mongodb_command(transfer):
    txn, spans = transfer
    server = _server_span(spans)
    assert server.parent is None and server.attributes["http.method"] == "POST"
    assert {span.context.trace_id for span in spans} == {server.context.trace_id}  # one trace per request

    root = _one(spans, "transfer")
    assert root.parent.span_id == server.context.span_id
    assert root.attributes["aegis.transaction_id"] == txn["_id"]
    assert root.attributes["aegis.transfer.kind"] == "TRANSFER"
    steps = {span.name for span in _children(spans, root)}
    assert {"transfer.claim", "transfer.money_transaction"} <= steps

    # The claim: its insert is a MongoDB command span under it.
    claim = _one(spans, "transfer.claim")
    assert [span.name.split(".")[-1] for span in _children(spans, claim)] == ["insert"]

    # The money transaction: one attempt (nothing contended) and its commit, in that order.
    money = _one(spans, "transfer.money_transaction")
    under_money = sorted(_children(spans, money), key=lambda span: span.start_time)
    assert [span.name for span in under_money] == ["transfer.attempt", "transaction.commit"]
    attempt, commit = under_money
    assert attempt.attributes["aegis.attempt"] == 1
    commands = [span for span in _children(spans, attempt) if span.kind == SpanKind.CLIENT]
    names = [span.name.split(".")[-1] for span in commands]
    # Both guarded balance updates, the settled claim, the ledger pair, the audit entry, the event.
    assert names.count("findAndModify") == 2 and "update" in names and names.count("insert") >= 3, names
    assert all(span.attributes["db.system"] == "mongodb" for span in commands)
    assert [span.name for span in _children(spans, commit)] == ["admin.commitTransaction"]
    # No statement is captured: a command's documents hold balances and names.
    assert not any("db.statement" in span.attributes and "balance" in span.attributes["db.statement"] for span in spans)


def test_the_trace_id_is_in_the_log_lines_the_audit_entry_and_the_outbox_event(transfer, json_log):
    txn, spans = transfer
    server = _server_span(spans)
    trace_id = _hex(server.context.trace_id)

    request_lines = [
        line for line in json_log() if line["logger"] == "aegis.request" and line["path"] == "/api/transactions"
    ]
    assert len(request_lines) == 1 and request_lines[0]["trace_id"] == trace_id
    assert len(request_lines[0]["span_id"]) == 16
    # The engine's own line, logged inside the transfer span, names the same trace.
    outcome_lines = [line for line in json_log() if line["logger"] == "aegis.transfers"]
    assert [line["trace_id"] for line in outcome_lines] == [trace_id]

    audit = collection(AuditLog).find_one({"transaction_id": txn["_id"], "action": "TRANSFER_SUCCESS"})
    assert audit["trace_id"] == trace_id

    event = collection(OutboxEvent).find_one({"payload.transactionId": txn["_id"]})
    version, event_trace, parent_span, flags = event["trace_context"]["traceparent"].split("-")
    assert (version, event_trace) == ("00", trace_id) and int(flags, 16) & 1  # sampled
    # Written inside the money transaction's attempt: that span is the event's parent.
    assert parent_span == format(_one(spans, "transfer.attempt").context.span_id, "016x")


def test_a_refused_transfer_records_its_failure_in_the_same_trace(fund, spans):
    sender_user = make_user()
    sender, receiver = make_account(user=sender_user), make_account()
    login = ApiClient().post("/api/auth/login", {"email": sender_user.email, "password": PASSWORD})
    client = ApiClient(token=login.json()["token"])
    spans.clear()
    response = client.post(
        "/api/transactions",
        {"fromAccount": str(sender.pk), "toAccount": str(receiver.pk), "amount": 1, "idempotencyKey": "poor-1"},
    )
    assert response.status_code == 422 and response.json()["code"] == "insufficient_funds"
    finished = spans.get_finished_spans()
    server = _server_span(finished)
    failure = _one(finished, "transfer.record_failure")
    assert failure.context.trace_id == server.context.trace_id
    assert failure.attributes["aegis.transfer.failure_code"] == "insufficient_funds"
    assert failure.parent.span_id == _one(finished, "transfer").context.span_id
    audit = collection(AuditLog).find_one({"action": "TRANSFER_FAILED"})
    assert audit["trace_id"] == format(server.context.trace_id, "032x")


@pytest.mark.parametrize("batch_size", [1, 50])
def test_the_dispatcher_continues_the_trace_of_the_event_it_delivers(transfer, spans, batch_size):
    txn, request_spans = transfer
    trace_id = _server_span(request_spans).context.trace_id
    writer = _one(request_spans, "transfer.attempt")  # the span the event was written in
    spans.clear()

    counts = Dispatcher(batch_size=batch_size).run_once()
    assert counts["delivered"] >= 1
    delivered = spans.get_finished_spans()

    if batch_size == 1:
        # One event at a time: each delivery is a child of the span that wrote its event.
        mine = [span for span in delivered if span.name == "outbox.deliver" and span.context.trace_id == trace_id]
        assert mine and all(span.parent.span_id == writer.context.span_id for span in mine)
        assert all(link.context.span_id == writer.context.span_id for span in mine for link in span.links)
        # The handler's own MongoDB commands continue the transfer's trace too.
        assert any(span.kind == SpanKind.CLIENT for span in _children(delivered, mine[0]))
    else:
        # A batch is one span of its own trace, linked to every event's context ...
        batch = _one(delivered, "outbox.deliver_batch")
        assert batch.context.trace_id != trace_id
        assert writer.context.span_id in {link.context.span_id for link in batch.links}
        assert any(
            span.kind == SpanKind.CLIENT and span.context.trace_id == batch.context.trace_id for span in delivered
        )
        # ... and the transfer's trace gets an `outbox.delivered` span, linked back to the batch.
        mine = [span for span in delivered if span.name == "outbox.delivered" and span.context.trace_id == trace_id]
        assert len(mine) == 1
        assert mine[0].parent.span_id == writer.context.span_id
        assert mine[0].attributes["aegis.outbox.event_type"] == "transaction.completed"
        assert batch.context.span_id in {link.context.span_id for link in mine[0].links}


def test_an_event_without_a_usable_trace_context_is_delivered_in_a_fresh_trace(spans):
    """Events written with tracing off carry {}; a mangled context is data, never an error."""
    from datetime import UTC, datetime

    from aegis.mongo import run_transaction
    from events.services import outbox_append

    now = datetime.now(UTC)
    for payload in ({"n": 1}, {"n": 2}):
        run_transaction(
            lambda session, payload=payload: outbox_append(
                session, event_type="test.event", aggregate_id="a" * 24, payload=payload, now=now
            ),
            deadline_seconds=5,
        )
    collection(OutboxEvent).update_one(
        {"payload.n": 2}, {"$set": {"trace_context": {"traceparent": "00-not-a-trace-01", "tracestate": 7}}}
    )
    assert collection(OutboxEvent).find_one({"payload.n": 1})["trace_context"] == {}  # no span was current
    spans.clear()
    assert Dispatcher(handlers={"noop": lambda event, *, session: None}, batch_size=1).run_once()["delivered"] == 2
    delivered = [span for span in spans.get_finished_spans() if span.name == "outbox.deliver"]
    assert len(delivered) == 2
    assert all(span.parent is None and not span.links for span in delivered)
