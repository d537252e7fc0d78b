"""Run worker processes against the test database and collect their JSON lines."""

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def spawn(spec: dict, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.transfers.worker", json.dumps(spec)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def run_workers(specs: list[dict], env: dict, *, timeout: float = 600, stats: list | None = None) -> list[dict]:
    """Start one process per spec, release them together, and return every result line.

    The start barrier: each process sets up (Django, its connection, its lookups), says "ready"
    and waits; when all have said it, one line on each stdin releases them at once. A process
    that dies first closes its stdout, and its error is reported below.

    A spec's "env" is added to that process's environment. `stats` (a list) receives each
    process's engine counters ({"queue_waits", "conflict_retries"}).
    """
    procs = [spawn({**spec, "barrier": True}, {**env, **spec.get("env", {})}, stdin=subprocess.PIPE) for spec in specs]
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.stdout.readline()  # "ready", or "" from a process that died
    for proc in procs:
        try:
            proc.stdin.write("go\n")
            proc.stdin.flush()  # communicate() below closes it
        except BrokenPipeError:
            pass  # it died before the barrier: its stderr says why below
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0, err[-2000:]
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        results += [line for line in lines if "stats" not in line]
        if stats is not None:
            stats += [line["stats"] for line in lines if "stats" in line]
    return results
