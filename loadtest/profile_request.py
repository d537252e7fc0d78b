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
import pstats
import sys
import time
from collections import defaultdict

from loadtest import setup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.profile_request")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    from pymongo import monitoring

    per_command: dict = defaultdict(list)

    class Listener(monitoring.CommandListener):
        def started(self, event):
            pass

        def succeeded(self, event):
            per_command[event.command_name].append(event.duration_micros)

        def failed(self, event):
            per_command[event.command_name + " (failed)"].append(event.duration_micros)

    monitoring.register(Listener())
    env = {**setup.unthrottled_env(), "AEGIS_LOG_LEVEL": "WARNING"}
    with setup.embedded_django(tmp_prefix="aegis-profile-", db_name="profile", env=env) as harness:
        from django.test import Client

        sender, receiver = setup.funded_users(count=2, prefix="profile", funder=harness.system_user)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {sender['token']}")

        def one(i: int) -> None:
            body = {
                "fromAccount": sender["account"],
                "toAccount": receiver["account"],
                "amount": "1.00",
                "idempotencyKey": f"profile-{i}",
            }
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
        print(
            f"{n} requests: {elapsed / n * 1000:.1f} ms per request wall, of which "
            f"{server_ms:.1f} ms waiting on {sum(len(v) for v in per_command.values()) / n:.1f} MongoDB commands"
        )
        for name, durations in sorted(per_command.items(), key=lambda kv: -sum(kv[1])):
            avg = sum(durations) / len(durations) / 1000
            print(
                f"  {name:20s} {len(durations) / n:4.1f} per request  avg {avg:5.2f} ms"
                f"  total {sum(durations) / 1000 / n:5.2f} ms/request"
            )
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(r"(aegis|accounts|transfers|ledger)/", 15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
