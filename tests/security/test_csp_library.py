"""The Content-Security-Policy comes from django-csp (aegis.security.CSPMiddleware) and reads the
same in every process: django-csp 4.0 orders a policy's directives by a set, which changes with
the interpreter's hash seed; the header keeps the order settings declare."""

import os
import subprocess
import sys
from pathlib import Path

from aegis.security import CSP, CSP_RELAXED_STYLES

ROOT = Path(__file__).resolve().parents[2]
SHOW = "import django; django.setup(); from aegis import security as s; print(s.CSP); print(s.CSP_RELAXED_STYLES)"


def test_the_policy_reads_the_same_in_every_process():
    seen = set()
    for seed in ("1", "2", "3", "4", "5"):
        env = dict(os.environ, PYTHONHASHSEED=seed, DJANGO_SETTINGS_MODULE="aegis.settings")
        result = subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        seen.add(tuple(result.stdout.strip().splitlines()[-2:]))
    assert seen == {(CSP, CSP_RELAXED_STYLES)}
    assert CSP.startswith("default-src 'self'; script-src 'self'; style-src 'self';")


def test_pages_get_the_library_header(client):
    assert client.get("/login")["Content-Security-Policy"] == CSP
    assert client.get("/api/docs")["Content-Security-Policy"] == CSP_RELAXED_STYLES
