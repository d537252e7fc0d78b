#!/usr/bin/env bash
# Run a command against MONGODB_URI, or against the embedded server (started if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MONGODB_URI:-}" ]; then
  MONGODB_URI="$(.venv/bin/python -m aegis.embedded start)" || exit 2
  export MONGODB_URI
fi
exec "$@"
