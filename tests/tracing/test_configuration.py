"""Configuration by the standard OTEL_* variables, and "off costs nothing": a fresh process with
no OTEL_* variable serves a request and a MongoDB command without importing OpenTelemetry at all."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from aegis import tracing

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: django.setup() (AegisConfig.ready decides), one request through the
# full middleware chain, one MongoDB command, then a report of what tracing left in the process.
PROBE = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.test import Client
from pymongo import monitoring
from aegis import tracing
from aegis.mongo import get_db

status = Client().get("/healthz").status_code
get_db().command("ping")
provider = None
if "opentelemetry.trace" in sys.modules:
    from opentelemetry import trace
    provider = type(trace.get_tracer_provider()).__name__
    trace.get_tracer_provider().force_flush()
print("PROBE " + json.dumps({
    "status": status,
    "enabled": tracing.enabled(),
    "otel_modules": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
    "otel_middleware": [m for m in settings.MIDDLEWARE if "opentelemetry" in m],
    "first_middleware": settings.MIDDLEWARE[0],
    "command_listeners": [type(l).__name__ for l in monitoring._LISTENERS.command_listeners],
    "provider": provider,
}))
"""


def _probe(subprocess_env, **otel):
    env = {key: value for key, value in subprocess_env.items() if not key.startswith("OTEL_")}
    env.update(otel)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("PROBE "))
    return json.loads(line.removeprefix("PROBE ")), done.stdout


def test_off_by_default_nothing_is_set_up_or_even_imported(subprocess_env):
    report, _ = _probe(subprocess_env)
    assert report["status"] == 200
    assert report["enabled"] is False
    assert report["otel_modules"] == []  # no SDK, no API, no instrumentation in the process
    assert report["otel_middleware"] == [] and report["first_middleware"] == "aegis.observability.RequestLogMiddleware"
    assert report["command_listeners"] == []  # pymongo runs without a command listener
    assert report["provider"] is None


def test_the_sdk_disabled_switch_wins(subprocess_env):
    report, _ = _probe(subprocess_env, OTEL_SDK_DISABLED="true", OTEL_TRACES_EXPORTER="otlp")
    assert report["enabled"] is False and report["otel_modules"] == []


def test_on_from_the_environment_every_piece_is_installed(subprocess_env):
    report, stdout = _probe(subprocess_env, OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="aegis-probe")
    assert report["enabled"] is True and report["provider"] == "TracerProvider"
    assert report["first_middleware"].startswith("opentelemetry.instrumentation.django")
    assert report["command_listeners"] == ["CommandTracer"]
    # The console exporter printed the request's server span and the ping's client span.
    assert '"name": "GET healthz"' in stdout, stdout[-2000:]
    assert '"service.name": "aegis-probe"' in stdout
    assert '.ping"' in stdout


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "Console "}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_SERVICE_NAME": "aegis"}, False),  # naming the service alone sends nothing anywhere
    ],
)
def test_which_environments_ask_for_traces(environ, wanted):
    assert tracing.tracing_requested(environ) is wanted


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
    ],
)
def test_an_exporter_that_is_not_installed_is_refused_at_start_up(environ):
    with pytest.raises(ImproperlyConfigured):
        tracing._exporter_from(environ)


def test_off_the_helpers_cost_one_call_and_return_nothing():
    assert not tracing.enabled()
    assert tracing.current_trace_id() == "" and tracing.current_trace_context() == {}
    body = object()
    assert tracing.traced_attempts("x", body) is body  # the transaction body is not even wrapped
    with tracing.span("x") as current:
        assert current is None
    assert tracing.span("x") is tracing.span("y")  # one shared nullcontext, nothing allocated


@pytest.fixture
def collector():
    """A real OTLP/HTTP receiver on a free port: keeps every request body posted to /v1/traces."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str, str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append((self.path, self.headers.get("Content-Type", ""), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_the_otlp_exporter_sends_the_request_and_command_spans_to_the_collector(subprocess_env, collector):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    endpoint, received = collector
    report, _ = _probe(subprocess_env, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="aegis-otlp")
    assert report["enabled"] is True  # an endpoint alone turns tracing on, with OTLP
    assert received and all(path == "/v1/traces" for path, _, _ in received)
    assert all(kind == "application/x-protobuf" for _, kind, _ in received)
    names, services = set(), set()
    for _, _, body in received:
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"}
            names |= {span.name for scope in resource_spans.scope_spans for span in scope.spans}
    assert services == {"aegis-otlp"}
    assert "GET healthz" in names and any(name.endswith(".ping") for name in names), names
