"""A short `make chaos`: one database kill and one web-worker kill, with every check of the full run."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["db", "worker"])
def test_short_chaos_round_keeps_every_transfer_exactly_once(victim):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.chaos",
            "--rounds",
            "1",
            "--victims",
            victim,
            "--clients",
            "3",
            "--workers",
            "2",
            "--accounts",
            "8",
            "--seconds",
            "3",
            "--seed",
            "7",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "chaos verdict: PASS" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("1  "))
    assert victim in row and row.rstrip().endswith("OK")
