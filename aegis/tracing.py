"""Distributed tracing with OpenTelemetry: off unless the standard `OTEL_*` variables ask for it.

Off (the default) means *nothing*: no SDK imported, no tracer provider, no Django middleware, no
pymongo command listener. Every helper here then returns at its first line (`span()` hands back
one shared `nullcontext`, the id helpers return ""), so the code that calls them costs a function
call per step and no more. docs/tracing.md has the details and how "no cost" was checked.

On (`configure_from_environment`, called once from `AegisConfig.ready()`, before any request or
MongoDB client exists):
- the SDK's `TracerProvider` (its resource, sampler and batch processor read `OTEL_SERVICE_NAME`,
  `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*` themselves) exporting
  over OTLP/HTTP (`OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `_HEADERS`, `_TIMEOUT`...) or, for a
  look on a terminal, to the console;
- the Django instrumentation: one server span per request, first in the middleware chain, so
  every log line of the request (aegis.request's included) carries its trace id;
- the pymongo instrumentation: one client span per MongoDB command, child of whatever span is
  current (a transfer's attempt, a dispatcher's batch). Statements are not captured: a command's
  documents hold balances and names.

The application's own spans (`span`), the trace id for log lines and audit entries
(`current_trace_id`), the W3C context carried by outbox events (`current_trace_context`) and the
dispatcher's continuation of it (`continued_span`, `batch_span`) all live here, so no other
module imports OpenTelemetry.
"""

from __future__ import annotations

import itertools
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

TRACER_NAME = "aegis"
DEFAULT_SERVICE_NAME = "aegis"
SUPPORTED_EXPORTERS = ("otlp", "console")
SUPPORTED_PROTOCOLS = ("", "http/protobuf")

_NO_SPAN = nullcontext()


@dataclass
class _State:
    tracer: Any = None  # an SDK Tracer while tracing is on; None means off
    provider: Any = None


_state = _State()


def tracing_requested(environ=os.environ) -> bool:
    """Whether the environment asks for traces.

    `OTEL_SDK_DISABLED=true` always wins. Otherwise traces are on when `OTEL_TRACES_EXPORTER`
    names an exporter (not "none"), or, with it unset, when an OTLP endpoint is configured. The
    specification's default exporter is "otlp"; ours is off, so that a deployment that never
    heard of tracing pays nothing and sends nothing anywhere.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def enabled() -> bool:
    return _state.tracer is not None


def _exporter_from(environ):
    name = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    if name not in SUPPORTED_EXPORTERS:
        raise ImproperlyConfigured(
            f"OTEL_TRACES_EXPORTER={name!r} is not supported here; use one of {', '.join(SUPPORTED_EXPORTERS)} "
            "or 'none'."
        )
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip()
    if protocol not in SUPPORTED_PROTOCOLS:
        raise ImproperlyConfigured(
            f"OTLP protocol {protocol!r} is not installed; Aegis ships the http/protobuf exporter only."
        )
    # Reads OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,CERTIFICATE} itself.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure_from_environment(environ=os.environ) -> bool:
    """Set tracing up if the environment asks for it (once per process); True when it is on."""
    if _state.tracer is not None:
        return True
    if not tracing_requested(environ):
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # OTEL_TRACES_SAMPLER[_ARG]
    # A batch processor exports on its own thread (OTEL_BSP_*): a request never waits for the
    # collector, and a collector that is down costs dropped spans, never a failed request.
    provider.add_span_processor(BatchSpanProcessor(_exporter_from(environ)))
    trace.set_tracer_provider(provider)
    install(provider)
    return True


def install(provider) -> None:
    """Instrument Django and pymongo and start the application's spans, all on `provider`.

    pymongo listeners apply to clients created afterwards, and Django reads MIDDLEWARE when a
    handler is built: call this before either exists (tests close the connection after it).
    """
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    DjangoInstrumentor().instrument(tracer_provider=provider, is_sql_commentor_enabled=False)
    PymongoInstrumentor().instrument(tracer_provider=provider)
    _state.provider = provider
    _state.tracer = provider.get_tracer(TRACER_NAME)


def uninstall() -> None:
    """Undo `install` (tests): the middleware leaves MIDDLEWARE, the command listener goes quiet."""
    if _state.tracer is None:
        return
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    DjangoInstrumentor().uninstrument()
    PymongoInstrumentor().uninstrument()
    _state.tracer = _state.provider = None


# --- the application's spans ----------------------------------------------------------------------


def span(name: str, **attributes):
    """A child span of the current one, as a context manager (`nullcontext` when tracing is off).

    An exception leaving the block is recorded on the span and sets its status to ERROR (the
    SDK's default); the exception itself passes through untouched.
    """
    if _state.tracer is None:
        return _NO_SPAN
    return _state.tracer.start_as_current_span(name, attributes=attributes or None)


def traced_attempts(name: str, callback):
    """`callback` (a transaction body, run once per attempt by aegis.mongo.run_transaction) with
    each call in its own span, numbered from 1 (`aegis.attempt`); `callback` itself when off."""
    if _state.tracer is None:
        return callback
    attempts = itertools.count(1)

    def attempt(session):
        with span(name, **{"aegis.attempt": next(attempts)}):
            return callback(session)

    return attempt


def annotate(**attributes) -> None:
    """Add attributes to the current span (nothing when tracing is off)."""
    if _state.tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().set_attributes(attributes)


def current_trace_id() -> str:
    """The current trace's id as 32 hex digits ("" when tracing is off or no span is current)."""
    if _state.tracer is None:
        return ""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def current_span_id() -> str:
    if _state.tracer is None:
        return ""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.span_id, "016x") if context.is_valid else ""


def current_trace_context() -> dict[str, str]:
    """The current span's W3C trace context (`traceparent`, maybe `tracestate`), to store with an
    event so whoever handles it later continues this trace; {} when there is none."""
    if _state.tracer is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier


def _span_context_of(carrier: dict | None):
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if not isinstance(carrier, dict) or not carrier:
        return None, None
    # Only the W3C keys, as strings: an event's stored context is data, never trusted further.
    clean = {
        key: value for key, value in carrier.items() if key in ("traceparent", "tracestate") and isinstance(value, str)
    }
    context = TraceContextTextMapPropagator().extract(clean)
    span_context = trace.get_current_span(context).get_span_context()
    return (context, span_context) if span_context.is_valid else (None, None)


def continued_span(name: str, carrier: dict | None, **attributes):
    """A span that continues the trace stored in `carrier` (a child of the span that wrote it, and
    linked to it); a fresh root span when the carrier holds no valid context."""
    if _state.tracer is None:
        return _NO_SPAN
    from opentelemetry.trace import Link

    context, span_context = _span_context_of(carrier)
    links = [Link(span_context)] if span_context is not None else None
    return _state.tracer.start_as_current_span(name, context=context, links=links, attributes=attributes or None)


@contextmanager
def batch_span(name: str, carriers: list[dict | None], **attributes):
    """One span for work done for many traced items at once (a dispatcher's batch): its own trace,
    with a link to each item's stored context, so every item's trace leads to it."""
    if _state.tracer is None:
        yield None
        return
    from opentelemetry.trace import Link

    links = []
    for carrier in carriers:
        _, span_context = _span_context_of(carrier)
        if span_context is not None:
            links.append(Link(span_context))
    with _state.tracer.start_as_current_span(name, links=links, attributes=attributes or None) as current:
        yield current


def record_continuation(name: str, carrier: dict | None, *, start_ns: int, linked_to=None, **attributes) -> None:
    """A finished span in the trace stored in `carrier`, from `start_ns` to now, linked to the
    span `linked_to` (a batch's): each event of a batch shows its delivery in its own trace."""
    if _state.tracer is None:
        return
    from opentelemetry.trace import Link

    context, span_context = _span_context_of(carrier)
    links = [Link(span_context)] if span_context is not None else []
    if linked_to is not None and linked_to.get_span_context().is_valid:
        links.append(Link(linked_to.get_span_context()))
    done = _state.tracer.start_span(
        name, context=context, links=links, attributes=attributes or None, start_time=start_ns
    )
    done.end()
