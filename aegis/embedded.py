"""The embedded MongoDB-compatible server (SecantusDB) that Aegis runs on by default.

This module and the server process it runs (aegis.embedded_server) are the only ones that know
the embedded server by name. It starts the server on 127.0.0.1, its commits synced (acknowledged
commits survive `kill -9`), waits until it answers `ping`, reuses one that is already serving
the same data folder, and stops it cleanly. When MONGODB_URI is set the app uses that
deployment and nothing here runs.

    python -m aegis.embedded start|stop|status [--data DIR] [--port N]

DIR defaults to AEGIS_DB_DIR, else `embedded/` in AEGIS_VAR_DIR (default var/ in the project);
N to AEGIS_DB_PORT, else 27018. A transaction left open by a client that died is aborted after
AEGIS_DB_TRANSACTION_LIFETIME_SECONDS (default 60; the tests use 5). Settings find the server
the same way (`configured_uri`), so every manage.py command talks to the database `make run`
started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

DEFAULT_PORT = 27018
DEFAULT_TRANSACTION_LIFETIME_SECONDS = 60.0
ROOT = Path(__file__).resolve().parent.parent
STATE_FILE = "secantus.json"


class EmbeddedServerError(RuntimeError):
    """A problem starting or reaching the embedded server, phrased for a person."""


@dataclass
class EmbeddedServer:
    host: str
    port: int
    pid: int
    process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def stop(self, timeout: float = 15.0) -> None:
        stop_pid(self.pid, timeout=timeout, process=self.process)


def uri_for(port: int, host: str = "127.0.0.1") -> str:
    return f"mongodb://{host}:{port}/?directConnection=true"


def default_data_dir() -> Path:
    if os.environ.get("AEGIS_DB_DIR"):
        return Path(os.environ["AEGIS_DB_DIR"]).resolve()
    var_dir = os.environ.get("AEGIS_VAR_DIR") or ROOT / "var"
    return Path(var_dir).resolve() / "embedded"


def default_port() -> int:
    return int(os.environ.get("AEGIS_DB_PORT") or DEFAULT_PORT)


def default_transaction_lifetime() -> float:
    return float(os.environ.get("AEGIS_DB_TRANSACTION_LIFETIME_SECONDS") or DEFAULT_TRANSACTION_LIFETIME_SECONDS)


def configured_uri() -> str:
    """The embedded server's URI as `start` would find it: the live server serving the data folder
    (it may have been started on another port), else 127.0.0.1:AEGIS_DB_PORT."""
    state_path = default_data_dir() / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
        if pid_alive(int(state["pid"])):
            return uri_for(int(state["port"]), state["host"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return uri_for(default_port())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def ping(uri: str, timeout_ms: int = 500) -> bool:
    client = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def pid_alive(pid: int) -> bool:
    try:  # reap it first if it is our own exited child (a zombie still "exists")
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, timeout: float = 15.0, process: subprocess.Popen | None = None) -> None:
    """SIGTERM lets WiredTiger close cleanly; SIGKILL only if it will not go."""
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not pid_alive(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait(timeout=5)


def start(
    *,
    storage: str,
    port: int | None = None,
    host: str = "127.0.0.1",
    test_commands: bool = False,
    log_path: Path | None = None,
    wait_seconds: float = 30.0,
    transaction_lifetime: float | None = None,
) -> EmbeddedServer:
    """Start a server and wait until it answers ping. `storage` may be ':memory:'.

    `transaction_lifetime` (seconds, default AEGIS_DB_TRANSACTION_LIFETIME_SECONDS or 60): how
    long a transaction whose client died keeps its documents before the server aborts it."""
    port = port or free_port(host)
    if port_in_use(port, host):
        raise EmbeddedServerError(
            f"port {port} on {host} is already in use by another program: "
            f"stop it, or choose another port with AEGIS_DB_PORT."
        )
    lifetime = transaction_lifetime or default_transaction_lifetime()
    cmd = [sys.executable, "-m", "aegis.embedded_server", "--host", host, "--port", str(port)]
    cmd += ["--storage-path", storage, "--transaction-lifetime", str(lifetime)]
    if test_commands:
        cmd.append("--enable-test-commands")
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log_path:
            log.close()
    server = EmbeddedServer(host=host, port=port, pid=process.pid, process=process)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            hint = f" (see {log_path})" if log_path else ""
            raise EmbeddedServerError(f"the embedded database exited with code {process.returncode} at start{hint}.")
        if ping(server.uri, timeout_ms=300):
            return server
        time.sleep(0.1)
    server.stop()
    raise EmbeddedServerError(f"the embedded database did not answer ping within {wait_seconds}s.")


def ensure_running(data_dir: Path, port: int = DEFAULT_PORT) -> EmbeddedServer:
    """Reuse the server already serving `data_dir`, or start one for it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    state_path = data_dir / STATE_FILE
    if state_path.exists():
        state = json.loads(state_path.read_text())
        running = EmbeddedServer(host=state["host"], port=state["port"], pid=state["pid"])
        if pid_alive(running.pid) and ping(running.uri):
            return running
        state_path.unlink()
    server = start(storage=str(data_dir / "db"), port=port, log_path=data_dir / "secantus.log")
    state_path.write_text(json.dumps({"host": server.host, "port": server.port, "pid": server.pid}))
    return server


def stop_running(data_dir: Path) -> bool:
    state_path = data_dir / STATE_FILE
    if not state_path.exists():
        return False
    state = json.loads(state_path.read_text())
    stop_pid(state["pid"])
    state_path.unlink()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis.embedded", description=__doc__)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--data", default=str(default_data_dir()))
    parser.add_argument("--port", type=int, default=default_port())
    args = parser.parse_args(argv)
    data_dir = Path(args.data).resolve()
    try:
        if args.action == "start":
            server = ensure_running(data_dir, args.port)
            print(server.uri)
        elif args.action == "stop":
            print("stopped" if stop_running(data_dir) else "not running")
        else:
            state_path = data_dir / STATE_FILE
            if not state_path.exists():
                print("not running")
                return 1
            state = json.loads(state_path.read_text())
            up = ping(uri_for(state["port"], state["host"]))
            print(f"{'running' if up else 'not answering'} on port {state['port']} (pid {state['pid']})")
            return 0 if up else 1
    except EmbeddedServerError as exc:
        print(f"aegis: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
