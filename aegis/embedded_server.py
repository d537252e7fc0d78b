"""The embedded server's own process: what `aegis.embedded.start` runs.

SecantusDB's daemon command has no flag for the transaction lifetime (how long the server keeps
a transaction that a dead client left open before it aborts it, and so how long that client's
documents stay held); only its server class takes it. So the server is started here, with the
options Aegis uses. Kept apart from aegis.embedded so that settings, which import that module,
do not load the storage engine.

    python -m aegis.embedded_server --port N --storage-path DIR [--transaction-lifetime S]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from secantus.server import SecantusDBServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis.embedded_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--storage-path", required=True, help="a folder, or ':memory:'")
    parser.add_argument("--transaction-lifetime", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--enable-test-commands", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = SecantusDBServer(
        host=args.host,
        port=args.port,
        storage_path=args.storage_path,
        enable_test_commands=args.enable_test_commands,
        sync_on_commit=True,  # acknowledged commits survive `kill -9`
        transaction_lifetime_seconds=args.transaction_lifetime,
    )

    def stop(signum, frame) -> None:  # SIGTERM lets WiredTiger close cleanly
        server.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
