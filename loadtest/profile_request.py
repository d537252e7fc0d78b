"""Where the time of one transfer request goes: every MongoDB command it sends, and a profile.

    python -m loadtest.profile_request [--requests 200]

Runs POST /api/transactions in-process (Django test client, real embedded server on disk),
counts the database commands per request with pymongo's command monitoring, and prints the
server time by command next to the total, then the top of a cProfile by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.profile_request")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    from pymongo import monitoring

    from aegis import embedded

    per_command: dict = defaultdict(list)

    class Listener(monitoring.CommandListener):
        def started(self, event):
            pass

        def succeeded(self, event):
            per_command[event.command_name].append(event.duration_micros)

        def failed(self, event):
            per_command[event.command_name + " (failed)"].append(event.duration_micros)

    monitoring.register(Listener())
    with tempfile.TemporaryDirectory(prefix="aegis-profile-") as tmp:
        server = embedded.start(storage=str(Path(tmp) / "db"))
        limits = "100000000/15m"
        os.environ.update(MONGODB_URI=server.uri, AEGIS_DB_NAME="profile", DJANGO_SETTINGS_MODULE="aegis.settings",
                          AEGIS_RATELIMIT_GLOBAL=limits, AEGIS_RATELIMIT_STRICT=limits, AEGIS_LOG_LEVEL="WARNING",
                          JWT_SECRET=secrets.token_urlsafe(40))
        try:
            sys.path.insert(0, str(ROOT))
            import django

            django.setup()
            from django.core.management import call_command
            from django.test import Client

            from accounts.auth import token_issue
            from accounts.services import system_bootstrap
            from tests.factories import make_account
            from transfers.services import system_fund

            call_command("migrate", verbosity=0)
            bank = system_bootstrap(credentials_path=Path(tmp) / "credentials.json")
            sender, receiver = make_account(), make_account()
            system_fund(actor=bank.system_user, to_account_id=str(sender.pk), amount_paise=1_000_000,
                        idempotency_key="profile-fund")
            client = Client(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=sender.user)}")

            def one(i: int) -> None:
                body = {"fromAccount": str(sender.pk), "toAccount": str(receiver.pk), "amount": "1.00",
                        "idempotencyKey": f"profile-{i}"}
                response = client.post("/api/transactions", json.dumps(body), content_type="application/json")
                assert response.status_code == 201, response.content

            for i in range(20):  # warm up
                one(-1 - i)
            per_command.clear()
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            for i in range(args.requests):
                one(i)
            profile.disable()
            elapsed = time.perf_counter() - started
            n = args.requests
            server_ms = sum(sum(v) for v in per_command.values()) / 1000 / n
            print(f"{n} requests: {elapsed / n * 1000:.1f} ms per request wall, of which "
                  f"{server_ms:.1f} ms waiting on {sum(len(v) for v in per_command.values()) / n:.1f} MongoDB commands")
            for name, durations in sorted(per_command.items(), key=lambda kv: -sum(kv[1])):
                avg = sum(durations) / len(durations) / 1000
                print(f"  {name:20s} {len(durations) / n:4.1f} per request  avg {avg:5.2f} ms"
                      f"  total {sum(durations) / 1000 / n:5.2f} ms/request")
            stats = pstats.Stats(profile)
            stats.sort_stats("cumulative").print_stats(r"(aegis|accounts|transfers|ledger)/", 15)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
