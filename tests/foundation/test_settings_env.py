"""Settings come from the environment through django-environ (aegis/settings.py `env`), with the
defaults and readings the hand-written helpers had; a value it cannot read stops start-up with
one line naming the variable, never a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOW = (
    "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps(["
    "s.ALLOWED_HOSTS, s.AEGIS_HTTPS_ONLY, s.AEGIS_TRANSFER_GATE, s.SECURE_HSTS_PRELOAD, s.JWT_SECRET]))"
)


def run(tmp_path, *args, **variables):
    env = dict(os.environ, AEGIS_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="aegis.settings", **variables)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AEGIS_REAUTH_SECONDS", "soon"),
        ("AEGIS_TRANSFER_DEADLINE_SECONDS", "ten"),
        ("AEGIS_TRANSFER_DEADLINE_SECONDS", "10s"),  # not 10: a number is read whole or refused
        ("AEGIS_OUTBOX_LEASE_SECONDS", "2.5.1"),
        ("AEGIS_RATELIMIT_GLOBAL", "lots"),
    ],
)
def test_an_unreadable_value_stops_start_up_naming_the_variable(tmp_path, name, value):
    result = run(tmp_path, "manage.py", "check", **{name: value})
    assert result.returncode == 2 and name in result.stderr and "Traceback" not in result.stderr


def test_lists_switches_and_keys_read_as_given(tmp_path):
    key = "$" + "k" * 40  # a key starting with "$" is the key, not a reference to another variable
    result = run(
        tmp_path,
        "-c",
        SHOW,
        DJANGO_ALLOWED_HOSTS=" a.example , b.example, ,",
        AEGIS_TRUSTED_PROXIES="10.0.0.1, 10.0.0.0/8, ",
        AEGIS_TRANSFER_GATE="off",
        DJANGO_SECURE_HSTS_PRELOAD="no",
        JWT_SECRET=key,
    )
    assert result.returncode == 0, result.stderr
    hosts, https_only, gate, preload, jwt_secret = json.loads(result.stdout.strip().splitlines()[-1])
    assert hosts == ["a.example", "b.example"] and https_only is True
    assert gate is False and preload is False and jwt_secret == key


@pytest.mark.parametrize("value", ["2", "ok", "y", "-1"])
def test_only_the_documented_words_switch_debug_on(tmp_path, value):
    result = run(
        tmp_path,
        "-c",
        "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG)",
        DJANGO_DEBUG=value,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
