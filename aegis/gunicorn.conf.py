"""gunicorn settings for `make run` (scripts/run.sh): `gunicorn -c aegis/gunicorn.conf.py aegis.wsgi`.

Workers: AEGIS_WEB_WORKERS, else WEB_CONCURRENCY, else two per core (at most 8): a sync worker
waits on the database for much of a request, and the database, the recovery sweeper and the
outbox dispatcher share the same cores. Ctrl+C stops gracefully: requests in flight finish
(up to AEGIS_WEB_GRACEFUL_SECONDS) before the workers exit; Ctrl+\\ stops at once.
"""

import os
import signal

bind = f"{os.environ.get('AEGIS_WEB_HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(
    os.environ.get("AEGIS_WEB_WORKERS") or os.environ.get("WEB_CONCURRENCY") or min(8, 2 * (os.cpu_count() or 1))
)
# Above the transfer deadline (AEGIS_TRANSFER_DEADLINE_SECONDS, 10 s by default).
timeout = int(os.environ.get("AEGIS_WEB_TIMEOUT_SECONDS", "30"))
graceful_timeout = int(os.environ.get("AEGIS_WEB_GRACEFUL_SECONDS", "20"))
# The app alone decides whom to believe about HTTPS (SECURE_PROXY_SSL_HEADER, from
# AEGIS_TRUSTED_PROXIES only); gunicorn would otherwise take X-Forwarded-Proto from 127.0.0.1.
secure_scheme_headers = {}
# aegis.request logs one JSON line per request (with its request id); gunicorn's would repeat it.
accesslog = None
# No control socket: its default path is per user, so two instances (a test, a bench) would share it.
control_socket_disable = True
errorlog = "-"
loglevel = "info"


def when_ready(server):
    # A terminal's Ctrl+C reaches every process of the group; gunicorn treats INT as "quit now",
    # which cuts requests off mid-way. Make the arbiter treat it as TERM (graceful) instead.
    signal.signal(signal.SIGINT, lambda signum, frame: server.signal(signal.SIGTERM, frame))


def post_worker_init(worker):
    # The worker leaves the stop to the arbiter, which sends it TERM and lets its request finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
