#!/usr/bin/env bash
# `make run`: database, migrations, bootstrap, then the web server.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8000}"
if [ -z "${MONGODB_URI:-}" ]; then
  echo "Starting the embedded database (data in var/embedded)..."
  MONGODB_URI="$(.venv/bin/python -m aegis.embedded start)" || exit 2
  export MONGODB_URI
fi
echo "Database: $MONGODB_URI"
.venv/bin/python manage.py migrate --verbosity 0
.venv/bin/python manage.py bootstrap
if ! .venv/bin/python -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "$PORT" 2>/dev/null; then
  echo "aegis: port $PORT is already in use; stop the other program or run: make run PORT=8001" >&2
  exit 2
fi
# The recovery sweeper settles transfers whose worker died mid-flight (see docs/transfer-engine.md).
.venv/bin/python manage.py recover_transfers --loop --interval 5 &
SWEEPER_PID=$!
# The outbox dispatcher delivers committed events to the notification handler (notifications/outbox.py).
.venv/bin/python manage.py dispatch_outbox --interval 0.2 &
DISPATCHER_PID=$!
trap 'kill "$SWEEPER_PID" "$DISPATCHER_PID" 2>/dev/null || true' EXIT INT TERM
echo "Serving Aegis at http://127.0.0.1:$PORT  (Ctrl+C to stop; the database keeps running: make db-stop)"
.venv/bin/python manage.py runserver "127.0.0.1:$PORT" --noreload
