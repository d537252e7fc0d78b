"""A few-second run of `make bench-login`, so the harness cannot rot: real gunicorn, real HTTP.

It asserts that the bench ran and printed its figures, and what the bound guarantees whatever
the machine's load: the burst's logins were answered (401, or 429 while the slot was busy or
the budget spent), never with a 5xx. Timings are the bench's report, not this test's verdict.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_short_login_burst_bench_runs_and_prints_its_figures():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.login_burst",
            "--rounds",
            "1",
            "--burst",
            "10",
            "--idle",
            "10",
            "--workers",
            "2",
            "--concurrency",
            "4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"median API latency idle   = \d+\.\d ms", out)
    assert re.search(r"median API latency during = \d+\.\d ms", out)
    assert re.search(r"during / idle             = \d+\.\d\d", out)
    round_line = next(line for line in out.splitlines() if line.strip().startswith("round 1:"))
    statuses = {int(k): int(v) for k, v in re.findall(r"(\d{3}): (\d+)", round_line.split("statuses")[1])}
    assert sum(statuses.values()) == 10 and set(statuses) <= {401, 429}
