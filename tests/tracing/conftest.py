"""Tracing on, in this process, exporting to memory: the SDK's InMemorySpanExporter, real spans.

One provider for the session (pymongo's instrumentation keeps the first provider it is given);
each test installs the instrumentations, reconnects so the MongoDB client carries the command
listener, and uninstalls them afterwards, so tests outside this package run untraced.
"""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aegis import tracing

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


def _reconnect():
    from django.db import connections

    try:
        connections["default"].close_pool()  # the next command opens a new MongoClient
    except KeyError:  # no pool open (tests/query_plans.py clears them): the next command opens one
        pass


@pytest.fixture
def spans(db):
    """The in-memory exporter, cleared, with tracing on for the test."""
    tracing.install(_PROVIDER)
    _reconnect()  # pymongo listeners apply to clients created after them
    _EXPORTER.clear()
    yield _EXPORTER
    tracing.uninstall()
    _EXPORTER.clear()
    _reconnect()
