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
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )


def run_workers(specs: list[dict], env: dict, *, start_delay: float = 4.0, timeout: float = 600,
                stats: list | None = None) -> list[dict]:
    """Start one process per spec, release them together, and return every result line.

    A spec's "env" is added to that process's environment. `stats` (a list) receives each
    process's engine counters ({"queue_waits", "conflict_retries"}).
    """
    start_at = time.time() + start_delay
    procs = [spawn({**spec, "start_at": start_at}, {**env, **spec.get("env", {})}) for spec in specs]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-2000:]
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        results += [line for line in lines if "stats" not in line]
        if stats is not None:
            stats += [line["stats"] for line in lines if "stats" in line]
    return results
