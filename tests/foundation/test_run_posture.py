"""`make run`'s posture: gunicorn with DEBUG off, static files collected and served, no key in the
repository (one generated per install under var/, the same in every process), plain HTTP on
127.0.0.1 until a TLS proxy is configured, bootstrap logins shown once and kept in var/, and
every command finding the embedded database as `make run` does (AEGIS_DB_PORT, AEGIS_DB_DIR)."""

import http.client
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from django.conf import settings

from accounts.auth import token_issue
from aegis import embedded
from tests.factories import make_account

ROOT = Path(__file__).resolve().parents[2]
# The key aegis/settings.py used to carry as a literal: anyone who read the repository had it.
OLD_LITERAL_JWT_KEY = "dev-only-insecure-jwt-secret-change-me-0123456789abcdefghijklmnop"
OLD_LITERAL_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
POSTURE_VARIABLES = (
    "DJANGO_DEBUG",
    "DJANGO_SECURE_",
    "DJANGO_SECRET_KEY",
    "JWT_SECRET",
    "AEGIS_TRUSTED_PROXIES",
    "DJANGO_ALLOW_",
    "AEGIS_WEB_",
    "WEB_CONCURRENCY",
    "AEGIS_STATIC_ROOT",
)


@pytest.fixture
def run_env(subprocess_env):
    """What `make run` gives its processes: nothing about posture set (every default applies)."""
    return {name: value for name, value in subprocess_env.items() if not name.startswith(POSTURE_VARIABLES)}


def python(env, *args, timeout=60):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


SHOW_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({"
    "'debug': s.DEBUG, 'secret': s.SECRET_KEY, 'jwt': s.JWT_SECRET, 'redirect': s.SECURE_SSL_REDIRECT, "
    "'hsts': s.SECURE_HSTS_SECONDS, 'cookies': [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.JWT_COOKIE_SECURE], "
    "'host': s.DATABASES['default']['HOST']}))"
)


def show_settings(env):
    result = python(env, "-c", SHOW_SETTINGS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- secrets ----------------------------------------------------------------------------------


def test_no_key_is_written_in_the_repository():
    text = (ROOT / "aegis" / "settings.py").read_text()
    assert "dev-only" not in text and OLD_LITERAL_JWT_KEY not in text and OLD_LITERAL_SECRET_KEY not in text
    assert settings.JWT_SECRET != OLD_LITERAL_JWT_KEY and settings.SECRET_KEY != OLD_LITERAL_SECRET_KEY


def test_unset_keys_are_generated_once_per_install_private_and_shared(run_env, tmp_path):
    env = dict(run_env, AEGIS_VAR_DIR=str(tmp_path / "var"))
    # Several processes start at once on a fresh install (gunicorn workers, commands): one key wins.
    procs = [
        subprocess.Popen([sys.executable, "-c", SHOW_SETTINGS], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    seen = [json.loads(proc.communicate(timeout=60)[0].strip().splitlines()[-1]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    keys = {(s["secret"], s["jwt"]) for s in seen}
    assert len(keys) == 1
    ((secret, jwt_key),) = keys
    assert len(secret) >= 50 and len(jwt_key) >= 32 and secret != jwt_key
    path = tmp_path / "var" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"DJANGO_SECRET_KEY": secret, "JWT_SECRET": jwt_key}
    assert [p.name for p in path.parent.iterdir()] == ["secrets.json"]  # no temporary file left behind
    # Kept: a later process reads the same keys; the environment still wins over the file.
    assert show_settings(env)["jwt"] == jwt_key
    given = "x" * 40
    overridden = show_settings(dict(env, JWT_SECRET=given))
    assert overridden["jwt"] == given and overridden["secret"] == secret


@pytest.mark.parametrize(("name", "value"), [("DJANGO_SECRET_KEY", "too-short"), ("JWT_SECRET", "short")])
def test_short_keys_from_the_environment_are_refused_in_any_mode(run_env, tmp_path, name, value):
    for debug in ("false", "true"):
        env = dict(run_env, AEGIS_VAR_DIR=str(tmp_path), DJANGO_DEBUG=debug, **{name: value})
        result = python(env, "manage.py", "check")
        assert result.returncode == 2 and name in result.stderr and "Traceback" not in result.stderr


def test_the_pytest_process_and_its_workers_share_one_key(run_env):
    # OS-process tests (throttling, transfers, the outbox) verify tokens across processes.
    assert show_settings(run_env)["jwt"] == settings.JWT_SECRET


# --- posture without and with a TLS proxy ------------------------------------------------------


def test_make_run_defaults_are_production_over_plain_http(run_env):
    seen = show_settings(run_env)
    assert seen["debug"] is False
    # No TLS proxy configured: the app cannot tell HTTPS, so it serves plain HTTP on 127.0.0.1.
    assert seen["redirect"] is False and seen["hsts"] == 0 and seen["cookies"] == [False, False, False]
    proxied = show_settings(dict(run_env, AEGIS_TRUSTED_PROXIES="10.0.0.1"))
    assert proxied["redirect"] is True and proxied["hsts"] == 31536000 and proxied["cookies"] == [True, True, True]
    # Each stays overridable by its own variable.
    override = dict(
        run_env,
        AEGIS_TRUSTED_PROXIES="10.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_COOKIES="false",
        DJANGO_SECURE_HSTS_SECONDS="60",
    )
    assert show_settings(override) == proxied | {"redirect": False, "hsts": 60, "cookies": [False, False, False]}


def test_deploy_check_on_make_run_flags_only_the_missing_tls_proxy(run_env):
    result = python(run_env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    flagged = set(re.findall(r"security\.W\d+", result.stderr + result.stdout))
    # HTTPS redirect, HSTS, Secure session and CSRF cookies: all switched on by a TLS proxy.
    # Not DEBUG (W018) and not a weak SECRET_KEY (W009): those are right on a fresh clone.
    assert flagged == {"security.W004", "security.W008", "security.W012", "security.W016"}, result.stderr


# --- the production stack: gunicorn, collected static files, no internals --------------------


def _request(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


@pytest.fixture
def gunicorn(run_env, tmp_path):
    """`make run`'s web server: collectstatic, then gunicorn with aegis/gunicorn.conf.py, DEBUG unset."""
    static_root = tmp_path / "staticfiles"
    env = dict(run_env, AEGIS_STATIC_ROOT=str(static_root), AEGIS_WEB_WORKERS="2", PORT=str(embedded.free_port()))
    collected = python(env, "manage.py", "collectstatic", "--noinput", "--verbosity", "0", timeout=120)
    assert collected.returncode == 0, collected.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "aegis/gunicorn.conf.py", "aegis.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    port = int(env["PORT"])
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if _request(port, "/healthz")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "gunicorn did not answer /healthz"
        time.sleep(0.2)
    yield port, proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_gunicorn_serves_static_files_and_hides_internals(gunicorn, bank):
    port, proc = gunicorn
    for path, kind in [("/static/js/htmx.min.js", "javascript"), ("/static/css/aegis.css", "text/css")]:
        status, headers, body = _request(port, path)
        assert status == 200 and kind in headers["Content-Type"] and body, path
    status, headers, body = _request(port, "/static/js/htmx.min.js", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"  # compressed at collectstatic
    # Plain HTTP on 127.0.0.1 is served, not redirected; pages link the collected files.
    status, headers, body = _request(port, "/login")
    assert status == 200 and b"/static/js/htmx.min.js" in body
    # A 404 with DEBUG off: no traceback, settings or URL list.
    status, headers, body = _request(port, "/no-such-page")
    text = body.decode()
    assert status == 404
    for leak in ("Traceback", "URLconf", "DEBUG = True", "Using the URLconf", "SECRET_KEY", "aegis.urls"):
        assert leak not in text
    # A token signed with the key that used to be in the repository is refused; the install's is not.
    victim = make_account().user
    now = datetime.now(UTC)
    claims = {
        "sub": str(victim.pk),
        "iat": now,
        "exp": now + timedelta(hours=1),
        "jti": "f" * 32,
        "epoch": victim.auth_epoch,
    }
    forged = jwt.encode(claims, OLD_LITERAL_JWT_KEY, algorithm="HS256")
    assert _request(port, "/api/accounts", {"Authorization": f"Bearer {forged}"})[0] == 401
    assert _request(port, "/api/accounts", {"Authorization": f"Bearer {token_issue(user=victim)}"})[0] == 200
    # Ctrl+C reaches the whole process group; gunicorn stops gracefully and exits cleanly.
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert "Handling signal: term" in proc.stderr.read()


# --- bootstrap --------------------------------------------------------------------------------


def test_bootstrap_shows_logins_once_and_keeps_env_passwords_in_var(run_env, tmp_path):
    env = dict(
        run_env,
        AEGIS_VAR_DIR=str(tmp_path),
        AEGIS_ADMIN_EMAIL="boss@example.com",
        AEGIS_ADMIN_PASSWORD="an operator chosen passphrase 9",
    )
    first = python(env, "manage.py", "bootstrap")
    assert first.returncode == 0, first.stderr
    path = tmp_path / "credentials.json"
    stored = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stored["admin"] == {"email": "boss@example.com", "password": "an operator chosen passphrase 9"}
    system = stored["system"]
    assert f"Created the system login: {system['email']} / {system['password']}" in first.stdout
    # The operator's own password is not echoed; where it came from is.
    assert "Created the admin login: boss@example.com, password from AEGIS_ADMIN_PASSWORD" in first.stdout
    assert "an operator chosen passphrase 9" not in first.stdout
    again = python(env, "manage.py", "bootstrap")
    assert again.returncode == 0 and "Created" not in again.stdout and system["password"] not in again.stdout


# --- every command finds the embedded database as `make run` does ------------------------------


def test_commands_find_the_embedded_database_by_port_and_folder(run_env, embedded_server, bank, tmp_path):
    make_account()
    base = {k: v for k, v in run_env.items() if k not in ("MONGODB_URI", "AEGIS_DB_PORT", "AEGIS_DB_DIR")}
    # Only AEGIS_DB_PORT: reconcile checks the database on that port (this test's one account + the bank's).
    env = dict(base, AEGIS_DB_PORT=str(embedded_server.port), AEGIS_DB_DIR=str(tmp_path / "empty"))
    result = python(env, "manage.py", "reconcile")
    assert result.returncode == 0, result.stderr
    assert "accounts: 2 " in result.stdout and "reconcile: OK" in result.stdout
    assert show_settings(env)["host"] == embedded_server.uri
    # A server already serving AEGIS_DB_DIR is found on its own port, as `make run` reuses it.
    data_dir = tmp_path / "embedded"
    data_dir.mkdir()
    (data_dir / embedded.STATE_FILE).write_text(
        json.dumps({"host": "127.0.0.1", "port": embedded_server.port, "pid": embedded_server.pid})
    )
    by_folder = dict(base, AEGIS_DB_DIR=str(data_dir), AEGIS_DB_PORT=str(embedded.free_port()))
    assert show_settings(by_folder)["host"] == embedded_server.uri
