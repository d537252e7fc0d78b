"""Production settings behind a TLS proxy (DEBUG off by default, AEGIS_TRUSTED_PROXIES set) pass
Django's deployment checklist, refuse weak secrets, and behave as promised over HTTP: HTTPS
redirect, HSTS, Secure cookies, and a forwarded protocol believed only from a trusted proxy.
Each runs in a fresh OS process with production environment variables, against this test's
database. `make run` without a proxy (plain HTTP on 127.0.0.1) is tests/foundation/test_run_posture.py."""

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production_env(subprocess_env):
    env = dict(subprocess_env)
    for name in list(env):
        # DJANGO_ALLOW_ASYNC_UNSAFE comes from the browser tests' conftest; production never sets it.
        if name.startswith(("DJANGO_SECURE_", "AEGIS_SESSION_", "AEGIS_PROXY_", "AEGIS_CLIENT_IP", "DJANGO_ALLOW_")):
            del env[name]
    env.pop("DJANGO_DEBUG", None)  # production is the default
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        JWT_SECRET=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="bank.example.com",
        AEGIS_TRUSTED_PROXIES="10.0.0.0/8",
    )
    return env


def manage(env, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_production_settings_pass_the_deploy_check(production_env):
    result = manage(production_env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_settings_would_fail_it(subprocess_env):
    env = dict(subprocess_env, DJANGO_DEBUG="true")
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0 and "security.W018" in result.stderr  # DEBUG on


@pytest.mark.parametrize(
    ("name", "value"),
    [("DJANGO_SECRET_KEY", "short-secret"), ("JWT_SECRET", "short"), ("AEGIS_TRUSTED_PROXIES", "10.0.0.0/8,nope")],
)
def test_production_refuses_weak_or_malformed_settings(production_env, name, value):
    result = manage(dict(production_env, **{name: value}), "check")
    assert result.returncode != 0 and name in result.stderr


PROBE = r"""
import json
from django.test import Client

def probe(remote, path="/", **headers):
    response = Client(REMOTE_ADDR=remote, HTTP_HOST="bank.example.com", **headers).get(path)
    cookies = {name: {"secure": bool(c["secure"]), "httponly": bool(c["httponly"])}
               for name, c in response.cookies.items()}
    return {"status": response.status_code, "location": response.get("Location", ""),
            "hsts": response.get("Strict-Transport-Security", ""), "cookies": cookies}

print(json.dumps({
    "plain": probe("203.0.113.9"),
    "spoofed_proto": probe("203.0.113.9", HTTP_X_FORWARDED_PROTO="https"),
    "via_proxy": probe("10.0.0.5", "/login", HTTP_X_FORWARDED_PROTO="https"),
    "health": probe("10.0.0.5", "/healthz"),
}))
"""


def test_production_http_behaviour(production_env):
    result = manage(production_env, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # Plain HTTP is redirected to HTTPS, and a direct client cannot claim HTTPS with a header.
    for case in ("plain", "spoofed_proto"):
        assert seen[case]["status"] == 301 and seen[case]["location"] == "https://bank.example.com/"
    # Through the trusted proxy: served, with HSTS, and cookies that are Secure and HttpOnly.
    proxied = seen["via_proxy"]
    assert proxied["status"] == 200
    assert proxied["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert proxied["cookies"]["csrftoken"] == {"secure": True, "httponly": True}
    # Health probes may speak plain HTTP on the private network.
    assert seen["health"]["status"] in (200, 503)
