"""`make bench-scale` end to end at tiny sizes: a consistent bank, every row measured, one table.

Runs the tool as `make bench-scale` would (its own embedded server on disk, a child process per
size), only smaller: 20 customers, 200 and 400 transfers, 2 timed runs per read.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest import scale

ROOT = Path(__file__).resolve().parents[2]
SIZES = (200, 400)
TIMEOUT = 240  # seconds; 3.6 min on the loaded machine with the in-progress reconcile (target: 90 s)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("scale")
    doc = out / "performance.md"
    doc.write_text(f"# Prose kept\n\n{scale.TABLE_BEGIN}\nold table\n{scale.TABLE_END}\n\nAfter.\n")
    args = ["--sizes", ",".join(map(str, SIZES)), "--runs", "2", "--reconcile-runs", "1", "--customers", "20"]
    args += ["--notifications", "100", "--extra", "100", "--json", str(out / "results.json"), "--out", str(doc)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtest.scale", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the tool stops its children and embedded servers on SIGTERM
        stdout, stderr = proc.communicate(timeout=120)
        pytest.fail(f"bench-scale took over {TIMEOUT}s:\n{stderr[-3000:]}")
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else []
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), results, doc.read_text()


def _row_line(stdout: str, label: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith(f"| {label} [")]
    assert len(lines) == 1, f"no single table row for {label!r}"
    return lines[0]


def test_generated_bank_is_consistent(bench):
    proc, results, _ = bench
    assert [r["size"] for r in results] == list(SIZES), proc.stderr[-3000:]
    for result in results:
        assert result["reconcile_ok"], result["reconcile_verdict"]
        assert "OK" in result["reconcile_verdict"]
        bank = result["bank"]
        assert bank["transfers"] == result["size"]
        assert bank["fundings"] == result["generation"]["fundings"] > 0
        # one heavy account on ~10% of customer transfers, ~3% FAILED (loose bounds: tiny samples)
        assert 0.05 <= bank["heavy"] / bank["transfers"] <= 0.16
        assert 0.005 <= bank["failed"] / bank["transfers"] <= 0.07
        assert result["generation"]["rate"] > 0


def test_table_has_every_row_with_numbers(bench):
    proc, results, _ = bench
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for result in results:
        assert result["errors"] == {}
        assert set(result["rows"]) == {row.key for row in scale.ROWS}
    number = r"\d[\d,]*(\.\d+)? \(\d[\d,]*(\.\d+)?\)( p\d+)?"
    for row in scale.ROWS:
        cells = [c.strip() for c in _row_line(proc.stdout, row.label).strip("|").split("|")]
        figures, growth, verdict = cells[1 : 1 + len(SIZES)], cells[1 + len(SIZES)], cells[-1]
        assert all(re.fullmatch(number, cell) for cell in figures), (row.label, figures)
        assert re.fullmatch(r"\d+\.\d\d×", growth), (row.label, growth)
        assert verdict in ("pass", "FAIL", "—")
    assert "transfers/s" in proc.stdout


def test_out_file_keeps_its_prose(bench):
    proc, _, doc = bench
    assert doc.startswith("# Prose kept\n")
    assert doc.rstrip().endswith("After.")
    assert "old table" not in doc
    assert _row_line(doc, scale.ROWS[0].label)
