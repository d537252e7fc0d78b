"""The set-up the load tools share: a throwaway database, Django on it, funded users, child processes.

Used by `loadtest.engine_bench` (make bench-engine), `loadtest.outbox_bench` (make bench-outbox),
`loadtest.http_bench` (make bench), `loadtest.chaos` (make chaos) and `loadtest.profile_request`.
Each tool keeps its own options, load and report; this module owns only what they all repeat:

    with embedded_django(tmp_prefix="aegis-bench-", db_name="bench") as harness:
        people = funded_users(count=50, prefix="bench", funder=harness.system_user)
        proc = start_child("loadtest.engine_bench", "--worker", {...}, env=harness.env)
        result = child_result(proc, timeout=120)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import User
    from aegis.embedded import EmbeddedServer

ROOT = Path(__file__).resolve().parent.parent
# High enough that no load run is ever throttled: the tools measure the engine, not the limiter.
UNLIMITED_RATE = "100000000/15m"


def percentile(values: list[float], q: float) -> float:
    """The value at quantile `q` (0 to 1) of `values`, nearest rank; NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def tool_parser(prog: str, doc: str | None, numbers: dict[str, float], *, child_flag: str) -> argparse.ArgumentParser:
    """A load tool's command line: an option `--<name>` per entry of `numbers`, and a hidden `child_flag`.

    Each option takes the type of its default (int or float), in the order given. The tool runs
    itself with `child_flag` and a JSON spec to put load on from several processes (`start_child`).
    """
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in numbers.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    parser.add_argument(child_flag, help=argparse.SUPPRESS)
    return parser


def django_setup() -> None:
    """Configure Django from the environment (aegis.settings unless told otherwise), in any process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def unthrottled_env() -> dict[str, str]:
    """Environment for a tool that sends API requests: no rate limit bites, and a fresh JWT secret."""
    return {
        "AEGIS_RATELIMIT_GLOBAL": UNLIMITED_RATE,
        "AEGIS_RATELIMIT_STRICT": UNLIMITED_RATE,
        "JWT_SECRET": secrets.token_urlsafe(40),
    }


def gunicorn_env() -> dict[str, str]:
    """`unthrottled_env()` plus production settings for the app served under gunicorn on 127.0.0.1."""
    return {
        **unthrottled_env(),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        # The load clients stand in for the TLS-terminating proxy in front of gunicorn.
        "AEGIS_TRUSTED_PROXIES": "127.0.0.1",
    }


@dataclass
class Harness:
    """What `embedded_django` made: the temp folder, the server, the child environment, the bank."""

    tmp: Path
    server: EmbeddedServer
    env: dict[str, str]  # os.environ plus the tool's settings: pass it to every child process
    system_user: User | None = None  # set once bootstrapped

    def restart_server(self) -> None:
        """Start the server again on the same data and port, after it was killed."""
        from aegis import embedded

        self.server = embedded.start(storage=str(self.tmp / "db"), port=self.server.port)


@contextmanager
def embedded_django(*, tmp_prefix: str, db_name: str, env: dict[str, str] | None = None) -> Iterator[Harness]:
    """A fresh embedded server on disk (--sync-on-commit) with Django migrated and bootstrapped on it.

    Sets MONGODB_URI, AEGIS_DB_NAME, DJANGO_SETTINGS_MODULE and `env` in this process's
    environment and in `harness.env`, runs `django.setup()`, `migrate` and `system_bootstrap`.
    On exit the server stops (the one running then, if it was restarted) and the folder goes.
    """
    from aegis import embedded

    with tempfile.TemporaryDirectory(prefix=tmp_prefix) as tmp:
        server = embedded.start(storage=str(Path(tmp) / "db"))
        settings = {"MONGODB_URI": server.uri, "AEGIS_DB_NAME": db_name, "DJANGO_SETTINGS_MODULE": "aegis.settings"}
        os.environ.update(settings, **(env or {}))
        harness = Harness(tmp=Path(tmp), server=server, env=dict(os.environ))
        try:
            django_setup()
            from django.core.management import call_command

            from accounts.services import system_bootstrap

            call_command("migrate", verbosity=0)
            harness.system_user = system_bootstrap(credentials_path=harness.tmp / "credentials.json").system_user
            yield harness
        finally:
            harness.server.stop()


def funded_users(*, count: int, prefix: str, funder: User, amount_paise: int = 1_000_000) -> list[dict[str, str]]:
    """`count` users, each with one account funded by `funder`, as {"account": id, "token": API token}.

    Emails are `{prefix}{i}@example.com` and funding keys `{prefix}-fund-{i}`. Passwords are
    unusable: tokens are issued directly, so set-up pays no bcrypt cost.
    """
    from accounts.auth import token_issue
    from accounts.models import Account
    from accounts.models import User as UserModel
    from transfers.services import system_fund

    people = []
    for i in range(count):
        user = UserModel(email=f"{prefix}{i}@example.com")
        user.set_unusable_password()
        user.save()
        account = Account.objects.create(user=user)
        system_fund(
            actor=funder, to_account_id=str(account.pk), amount_paise=amount_paise, idempotency_key=f"{prefix}-fund-{i}"
        )
        people.append({"account": str(account.pk), "token": token_issue(user=user)})
    return people


def start_child(module: str, flag: str, spec: dict, *, env: dict[str, str]) -> subprocess.Popen:
    """Start `python -m <module> <flag> <spec as JSON>` in the project root, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", module, flag, json.dumps(spec)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )


def child_result(proc: subprocess.Popen, *, timeout: float) -> dict:
    """Wait for a child from `start_child`; its result is the JSON object on its last output line."""
    out, _ = proc.communicate(timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def run_child(work: Callable[[dict], dict], spec: str) -> int:
    """The child side of `start_child`: run `work` on the decoded spec and print its JSON result."""
    print(json.dumps(work(json.loads(spec))))
    return 0


def start_gunicorn(
    *, port: int, workers: int, env: dict[str, str], log_level: str, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    """Serve the app under gunicorn on 127.0.0.1:`port` (not yet answering: see `wait_http`)."""
    bind = f"127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "gunicorn", "aegis.wsgi", "-w", str(workers), "-b", bind, "--log-level", log_level]
    return subprocess.Popen([*cmd, "--timeout", "60", *extra], cwd=ROOT, env=env)


def wait_http(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    """Wait until the app served by `proc` (gunicorn) answers /healthz on 127.0.0.1:`port`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: gunicorn exited with code {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers={"X-Forwarded-Proto": "https"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("bench: the app did not answer /healthz in time")
