#!/usr/bin/env bash
# `make run`: database, migrations, bootstrap, static files, then gunicorn (DEBUG off).
# `make dev` (run.sh --dev): the same steps, then Django's development server with autoreload and DEBUG.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${PORT:-8000}"
export PORT
MODE=run
if [ "${1:-}" = "--dev" ]; then
  MODE=dev
  export DJANGO_DEBUG=true
fi
if [ -z "${MONGODB_URI:-}" ]; then
  echo "Starting the embedded database (data in ${AEGIS_DB_DIR:-${AEGIS_VAR_DIR:-var}/embedded})..."
  MONGODB_URI="$($PY -m aegis.embedded start)" || exit 2
  export MONGODB_URI
fi
echo "Database: $MONGODB_URI"
$PY manage.py migrate --verbosity 0
# Warns (never stops) when the deployment lacks what the engine needs: docs/deployment.md.
$PY manage.py check_deployment || true
$PY manage.py bootstrap
HOST="${AEGIS_WEB_HOST:-127.0.0.1}"
if ! $PY -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))" "$HOST" "$PORT" 2>/dev/null; then
  echo "aegis: port $PORT is already in use; stop the other program or run: make $MODE PORT=8001" >&2
  exit 2
fi
if [ "$MODE" = run ]; then
  # WhiteNoise serves what collectstatic gathers (DEBUG off: nothing else serves CSS or htmx).
  $PY manage.py collectstatic --noinput --verbosity 0
fi

# The recovery sweeper settles transfers whose worker died mid-flight (see docs/transfer-engine.md).
$PY manage.py recover_transfers --loop --interval 5 &
SWEEPER_PID=$!
# The outbox dispatcher delivers committed events to the notification handler (events/dispatcher.py; consumers register in AEGIS_OUTBOX_HANDLERS).
$PY manage.py dispatch_outbox --interval 0.05 &
DISPATCHER_PID=$!
# Seals the audit log's entries older than a few minutes into chained digests (ledger/seals.py).
$PY manage.py seal_audit --loop --interval 60 &
SEALER_PID=$!
WEB_PID=
stop() {
  trap - INT TERM
  # TERM is a graceful stop for gunicorn: requests in flight finish first.
  kill -TERM ${WEB_PID:+"$WEB_PID"} "$SWEEPER_PID" "$DISPATCHER_PID" "$SEALER_PID" 2>/dev/null || true
  wait || true
  exit "${1:-0}"
}
trap 'stop 0' INT TERM

echo "Serving Aegis at http://$HOST:$PORT  (Ctrl+C to stop; the database keeps running: make db-stop)"
if [ "$MODE" = run ]; then
  $PY -m gunicorn -c aegis/gunicorn.conf.py aegis.wsgi &
else
  $PY manage.py runserver "$HOST:$PORT" &
fi
WEB_PID=$!
# Returns when the web server exits on its own, or at once when a trapped signal arrives.
status=0
wait "$WEB_PID" || status=$?
stop "$status"
