"""Prometheus metrics at /metrics (text exposition format, `prometheus_client`).

Two kinds, because Aegis runs as several processes (gunicorn workers, the dispatcher):

- **From the database at scrape time** (the same answer whichever worker is scraped; each read
  is a few small documents or an index range as large as the backlog, never the history):
  `aegis_transfers{status}` (COMPLETED/FAILED from the statistics rollups, as of the last
  delivered outbox event; PROCESSING/INITIATED counted live; see docs/statistics.md),
  `aegis_outbox_events{status}` (PENDING backlog, PARKED),
  `aegis_outbox_oldest_pending_age_seconds` (delivery lag: now - oldest pending event),
  `aegis_outbox_dispatcher_heartbeat_age_seconds`.
- **Per process** (counted by the worker that served the scrape; sum or rate them per
  instance in Prometheus): `aegis_transfer_duration_seconds` (histogram, label outcome),
  `aegis_transfer_outcomes_total{outcome}`, `aegis_transaction_conflict_retries_total`
  (`aegis.mongo.conflict_retries`), `aegis_transaction_queue_waits_total` (those of them that
  queued behind an account's holder first, `aegis.mongo.queue_waits`),
  `aegis_rate_limited_requests_total{group}`.

Access: administrators (`@policy(ADMIN)`), or a scraper sending
`Authorization: Bearer $AEGIS_METRICS_TOKEN` when that variable is set (16+ characters).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pymongo.errors import PyMongoError

from accounts.policy import ADMIN, PUBLIC, policy
from aegis import mongo
from aegis.errors import MethodNotAllowed
from aegis.http import error_page
from aegis.observability import REGISTRY
from events.models import OutboxStatus
from events.selectors import outbox_stats
from transfers.rollups import transfer_counts


class DatabaseCollector(Collector):
    """Figures that must be exact across processes, computed from MongoDB at scrape time."""

    def collect(self):
        conflicts = CounterMetricFamily(
            "aegis_transaction_conflict_retries", "Write conflicts retried inside transactions (this process)."
        )
        conflicts.add_metric([], mongo.conflict_retries)
        yield conflicts
        queued = CounterMetricFamily(
            "aegis_transaction_queue_waits",
            "Conflict retries that first queued behind the transaction holding an account (this process).",
        )
        queued.add_metric([], mongo.queue_waits)
        yield queued

        transfers = GaugeMetricFamily(
            "aegis_transfers",
            "Transfers by status: settled ones from the statistics rollups (as of the last delivered event), "
            "in-flight ones live.",
            labels=["status"],
        )
        for status, n in transfer_counts().items():
            transfers.add_metric([status], n)
        yield transfers

        # The backlog only: DELIVERED is the whole history, which a scrape must not count.
        stats = outbox_stats()
        events = GaugeMetricFamily(
            "aegis_outbox_events", "Outbox events waiting (PENDING) or parked (PARKED).", labels=["status"]
        )
        events.add_metric([OutboxStatus.PENDING.value], stats["pending"])
        events.add_metric([OutboxStatus.PARKED.value], stats["parked"])
        yield events

        yield GaugeMetricFamily(
            "aegis_outbox_oldest_pending_age_seconds",
            "Delivery lag: age of the oldest undelivered event (0 when none).",
            value=stats["oldest_pending_age"],
        )
        if stats["heartbeat_age"] is not None:
            yield GaugeMetricFamily(
                "aegis_outbox_dispatcher_heartbeat_age_seconds",
                "Seconds since the freshest dispatcher heartbeat.",
                value=stats["heartbeat_age"],
            )


REGISTRY.register(DatabaseCollector())


def metrics_text() -> bytes:
    return generate_latest(REGISTRY)


def _is_scraper(request: HttpRequest) -> bool:
    token = settings.AEGIS_METRICS_TOKEN or ""
    if len(token) < 16:
        return False
    sent = request.headers.get("Authorization", "")
    return sent.startswith("Bearer ") and hmac.compare_digest(sent[7:].encode(), token.encode())


def _render(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


_admin_metrics = policy(ADMIN, methods=["GET"])(_render)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Scrapers with the bearer token get in directly; everyone else goes through the ADMIN policy."""
    if _is_scraper(request):
        if request.method not in ("GET", "HEAD"):
            return error_page(request, MethodNotAllowed(allowed=("GET",)))
        return _render(request)
    return _admin_metrics(request)


metrics_view.aegis_policy = _admin_metrics.aegis_policy


@policy(PUBLIC, methods=["GET"])
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers, and (when AEGIS_REQUIRE_DISPATCHER is true) a dispatcher
    has written a heartbeat within AEGIS_DISPATCHER_STALE_SECONDS (30 s)."""
    if not mongo.db_ping():
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    try:
        age = outbox_stats()["heartbeat_age"]
    except PyMongoError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    fresh = age is not None and age < settings.AEGIS_DISPATCHER_STALE_SECONDS
    dispatcher = "ok" if fresh else ("stale" if age is not None else "absent")
    required = bool(settings.AEGIS_REQUIRE_DISPATCHER)
    ready = fresh or not required
    body = {
        "status": "ok" if ready else "unavailable",
        "database": "ok",
        "dispatcher": dispatcher,
        "dispatcherRequired": required,
    }
    return JsonResponse(body, status=200 if ready else 503)
