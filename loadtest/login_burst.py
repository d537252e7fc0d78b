"""`make bench-login`: the median API latency idle, and during a burst of logins from one address.

Starts an embedded server (on disk) and the app under gunicorn, makes one reader user with an
API token, then for each round:
- idle:   the reader sends GET /api/accounts (Bearer token) one after another for a while;
- during: one address (X-Forwarded-For, a new one each round) sends `--burst` wrong-password
          logins for unknown emails (each one still costs a bcrypt check) from `--concurrency`
          connections, while the reader keeps reading and a legitimate user logs in once from
          another address.
It prints both medians and their ratio per round and the median over the rounds, the statuses
the burst got, and what the legitimate login got and how long it took. Target: during <= 2 x
idle. The strict auth limit is left at its setting (50 per 15 minutes by default), so the
default burst is one address's whole budget; the global limit is lifted for the reader.

    python -m loadtest.login_burst [--rounds 5] [--burst 50] [--concurrency 10] [--workers 4] [--idle 40]
                                   [--control 1]

`--control 1` adds, per round, a burst of as many cheap API reads from another address: what
any burst of that many requests costs the reader, hashing or not.

Run it with AEGIS_PASSWORD_HASH_SLOTS=1000 in the environment to see the machine without the
bound on password hashing in flight.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter

from loadtest import setup

PASSWORD = "a legitimate passphrase 42"  # noqa: S105 - the bench's own throwaway user


def _request(conn: http.client.HTTPConnection, method: str, path: str, *, headers: dict, body: str | None = None):
    conn.request(method, path, body=body, headers={"X-Forwarded-Proto": "https", **headers})
    response = conn.getresponse()
    response.read()
    return response.status


def _reads(port: int, token: str, *, count: int | None = None, until: threading.Event | None = None) -> list[float]:
    """Sequential authenticated API reads; their latencies in seconds (only 200s)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "10.99.0.1"}
    latencies = []
    while (count is not None and len(latencies) < count) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        status = _request(conn, "GET", "/api/accounts", headers=headers)
        if status != 200:
            raise SystemExit(f"bench-login: the reader got {status}")
        latencies.append(time.perf_counter() - started)
    conn.close()
    return latencies


def _burst(
    port: int, *, address: str, total: int, concurrency: int, round_no: int, read_token: str | None = None
) -> tuple[Counter, float]:
    """`total` wrong logins from one address over `concurrency` connections; statuses and duration.

    With `read_token`, the same number of authenticated API reads instead (the control: what any
    burst of that many requests costs the reader)."""
    statuses: Counter = Counter()
    lock = threading.Lock()
    todo = iter(range(total))

    def attacker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/json", "X-Forwarded-For": address}
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                break
            if read_token:
                status = _request(conn, "GET", "/api/accounts", headers={**headers, "Authorization": read_token})
            else:
                body = json.dumps({"email": f"guess{round_no}-{i}@example.com", "password": "not the password at all"})
                status = _request(conn, "POST", "/api/auth/login", headers=headers, body=body)
            with lock:
                statuses[status] += 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=attacker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, time.perf_counter() - started


def _legit_login(port: int, email: str, result: dict) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json", "X-Forwarded-For": "10.98.0.1"}
    started = time.perf_counter()
    result["status"] = _request(
        conn, "POST", "/api/auth/login", headers=headers, body=json.dumps({"email": email, "password": PASSWORD})
    )
    result["seconds"] = time.perf_counter() - started
    conn.close()


def run_control(port: int, token: str, args, round_no: int) -> float:
    """The reader's median during a burst of as many cheap authenticated reads from one address."""
    done = threading.Event()
    during: list[float] = []
    reader = threading.Thread(target=lambda: during.extend(_reads(port, token, until=done)))
    reader.start()
    _burst(
        port,
        address=f"10.78.{round_no}.1",
        total=args.burst,
        concurrency=args.concurrency,
        round_no=round_no,
        read_token=f"Bearer {token}",
    )
    done.set()
    reader.join()
    return statistics.median(during) if during else float("nan")


def run_round(port: int, token: str, legit_email: str, args, round_no: int) -> dict:
    idle = statistics.median(_reads(port, token, count=args.idle))
    done = threading.Event()
    during: list[float] = []
    reader = threading.Thread(target=lambda: during.extend(_reads(port, token, until=done)))
    reader.start()
    legit: dict = {}
    legit_thread = threading.Timer(0.2, _legit_login, args=(port, legit_email, legit))  # inside the burst
    legit_thread.start()
    statuses, seconds = _burst(
        port, address=f"10.77.{round_no}.1", total=args.burst, concurrency=args.concurrency, round_no=round_no
    )
    legit_thread.join()
    done.set()
    reader.join()
    return {
        "idle": idle,
        "during": statistics.median(during) if during else float("nan"),
        "during_p90": setup.percentile(during, 0.9),
        "reads": len(during),
        "statuses": dict(sorted(statuses.items())),
        "burst_seconds": seconds,
        "legit": legit,
        "control": run_control(port, token, args, round_no) if args.control else None,
    }


def main(argv: list[str] | None = None) -> int:
    numbers = {"rounds": 5, "burst": 50, "concurrency": 10, "workers": 4, "idle": 40, "control": 0}
    args = setup.tool_parser("python -m loadtest.login_burst", __doc__, numbers, child_flag="--child").parse_args(argv)

    from aegis import embedded

    env = {
        **setup.gunicorn_env(),
        # The burst meets the real strict auth limit; the reader must never be throttled.
        "AEGIS_RATELIMIT_STRICT": os.environ.get("AEGIS_RATELIMIT_STRICT", "50/15m"),
        "AEGIS_LOG_LEVEL": "ERROR",
        # gunicorn_env() trusts 127.0.0.1 as the proxy; the clients name their address like one.
        "AEGIS_CLIENT_IP_HEADER": "HTTP_X_FORWARDED_FOR",
    }
    with setup.embedded_django(tmp_prefix="aegis-bench-login-", db_name="bench_login", env=env) as harness:
        from django.conf import settings
        from django.core.management import call_command

        from accounts.services import user_create

        call_command("collectstatic", interactive=False, verbosity=0)  # as a deployment would
        reader = setup.funded_users(count=1, prefix="reader", funder=harness.system_user)[0]
        legit = user_create(email="legit@example.com", password=PASSWORD, name="Legit")
        port = embedded.free_port()
        gunicorn = setup.start_gunicorn(port=port, workers=args.workers, env=harness.env, log_level="warning")
        try:
            setup.wait_http(port, gunicorn)
            print(
                f"bench-login: gunicorn x{args.workers}, {os.cpu_count()} cores, {args.rounds} rounds of "
                f"{args.burst} logins from one address over {args.concurrency} connections; "
                f"strict limit {settings.AEGIS_RATELIMIT_STRICT}, password hashes in flight "
                f"{settings.AEGIS_PASSWORD_HASH_SLOTS} per machine",
                flush=True,
            )
            rounds = []
            for round_no in range(1, args.rounds + 1):
                r = run_round(port, reader["token"], legit.email, args, round_no)
                rounds.append(r)
                legit_result = r["legit"]
                print(
                    f"  round {round_no}: idle {r['idle'] * 1000:6.1f} ms  during {r['during'] * 1000:6.1f} ms "
                    f"p90 {r['during_p90'] * 1000:6.1f} ms ({r['reads']} reads)  ratio {r['during'] / r['idle']:5.2f}  "
                    f"burst {r['burst_seconds']:5.1f} s "
                    f"statuses {r['statuses']}  legitimate login {legit_result.get('status')} in "
                    f"{legit_result.get('seconds', float('nan')):.2f} s"
                    + (f"  control {r['control'] * 1000:6.1f} ms" if r["control"] is not None else ""),
                    flush=True,
                )
            idle = statistics.median(r["idle"] for r in rounds)
            during = statistics.median(r["during"] for r in rounds)
            print(f"median API latency idle   = {idle * 1000:.1f} ms")
            print(f"median API latency during = {during * 1000:.1f} ms")
            p90 = statistics.median(r["during_p90"] for r in rounds)
            print(f"p90 API latency during    = {p90 * 1000:.1f} ms")
            print(f"during / idle             = {during / idle:.2f}   (target <= 2.00)")
            if args.control:
                control = statistics.median(r["control"] for r in rounds)
                print(f"control (as many reads)   = {control * 1000:.1f} ms, {control / idle:.2f} x idle")
            server_errors = sum(n for r in rounds for s, n in r["statuses"].items() if s >= 500)
            return 1 if server_errors else 0
        finally:
            gunicorn.terminate()
            try:
                gunicorn.wait(timeout=30)
            except Exception:
                gunicorn.kill()


if __name__ == "__main__":
    sys.exit(main())
