"""A few-second run of `make bench`, so the harness cannot rot: real gunicorn, real HTTP, reconcile."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_short_http_bench_runs_clean():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.http_bench",
            "--clients",
            "2",
            "--workers",
            "2",
            "--accounts",
            "6",
            "--seconds",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "reconcile: OK" in out
    assert "HTTP uniform / engine" in out and "hot / uniform" in out
    uniform = next(line for line in out.splitlines() if line.strip().startswith("uniform :"))
    assert "201:" in uniform and "500" not in uniform
