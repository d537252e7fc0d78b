"""Password checks in flight are bounded (accounts.ratelimits.password_check_slot, issue 13 item 8).

While every slot is taken, a login, a sign-up or a password change answers 429 with
Retry-After at once (JSON on /api, the error page on pages) instead of queueing behind the
bcrypt work. The slots are shared by the threads of one process (a threaded server) and by the
processes of one machine (gunicorn's single-threaded workers), so both are tested: a thread of
this process holds the slot, then another OS process does.
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.test import Client

from ledger.models import AuditLog
from tests.accounts.conftest import ApiClient
from tests.factories import PASSWORD, make_user

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/api/auth/login"
BUSY = "The server is busy checking passwords. Try again in a moment."


@pytest.fixture
def one_slot(settings, generous_limits):
    settings.AEGIS_PASSWORD_HASH_SLOTS = 1


def hold_slot_in_a_thread():
    """Start a thread that holds the only slot until the returned event is set."""
    from accounts.ratelimits import password_check_slot

    held, release = threading.Event(), threading.Event()

    def holder():
        with password_check_slot():
            held.set()
            release.wait(timeout=60)

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert held.wait(timeout=10)
    return release, thread


def assert_busy_json(response):
    assert response.status_code == 429 and response["Retry-After"] == "1"
    assert response.json() == {"success": False, "message": BUSY, "code": "rate_limited"}


def test_a_full_slot_answers_429_at_once_on_every_password_surface(one_slot):
    user = make_user(email="busy@example.com")
    release, thread = hold_slot_in_a_thread()
    try:
        started = time.perf_counter()
        assert_busy_json(ApiClient().post(LOGIN, {"email": user.email, "password": PASSWORD}))
        assert_busy_json(ApiClient().post(LOGIN, {"email": "nobody@example.com", "password": "wrong but long"}))
        new = {"name": "New", "email": "new@example.com", "password": "a fine new passphrase 1"}
        assert_busy_json(ApiClient().post("/api/auth/register", new))
        page = Client().post("/login", {"email": user.email, "password": PASSWORD})
        assert page.status_code == 429 and page["Retry-After"] == "1"
        assert BUSY.encode() in page.content and b"<html" in page.content.lower()
        signed_in = Client()
        signed_in.force_login(user)
        change = {
            "current_password": PASSWORD,
            "new_password": "another passphrase 77",
            "new_password_confirm": "another passphrase 77",
        }
        changed = signed_in.post("/account/password", change)
        assert changed.status_code == 429 and BUSY.encode() in changed.content
        # None of them waited for the slot (it is held for up to a minute).
        assert time.perf_counter() - started < 30
    finally:
        release.set()
        thread.join(timeout=10)
    # Busy is not a wrong password (none was tried): no LOGIN_FAILED, nothing counted.
    assert not AuditLog.objects.filter(action="LOGIN_FAILED").exists()
    from accounts.models import RateLimitCounter
    from aegis.mongo import collection

    assert collection(RateLimitCounter).count_documents({"counters.login-account": {"$exists": True}}) == 0
    user.refresh_from_db()
    assert user.check_password(PASSWORD)  # the change did not happen
    # The slot is free again: everything works.
    assert ApiClient().post(LOGIN, {"email": user.email, "password": PASSWORD}).status_code == 200
    assert ApiClient().post("/api/auth/register", new).status_code == 201


def _spawn_holder(subprocess_env) -> subprocess.Popen:
    """A process that takes the one password-check slot, prints "held" and keeps it until stdin closes."""
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        cwd=ROOT,
        env=dict(subprocess_env, AEGIS_PASSWORD_HASH_SLOTS="1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_the_slot_is_shared_with_other_worker_processes(one_slot, subprocess_env):
    """gunicorn's sync workers each serve one request at a time, so a per-process bound alone
    would never refuse anything there: another process holding the slot must count."""
    user = make_user(email="shared@example.com")
    holder = _spawn_holder(subprocess_env)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_busy_json(ApiClient().post(LOGIN, {"email": user.email, "password": PASSWORD}))
    finally:
        holder.stdin.close()  # the holder lets go and exits
        holder.wait(timeout=30)
    assert ApiClient().post(LOGIN, {"email": user.email, "password": PASSWORD}).status_code == 200


def test_a_killed_holder_never_keeps_its_slot(one_slot, subprocess_env):
    user = make_user(email="killed@example.com")
    holder = _spawn_holder(subprocess_env)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # SIGKILL mid-check, as a worker timeout would
    holder.wait(timeout=30)
    assert ApiClient().post(LOGIN, {"email": user.email, "password": PASSWORD}).status_code == 200


def test_the_bound_is_a_setting(subprocess_env):
    def slots(value: str) -> subprocess.CompletedProcess:
        code = (
            "import django; django.setup(); from django.conf import settings; print(settings.AEGIS_PASSWORD_HASH_SLOTS)"
        )
        env = dict(subprocess_env, AEGIS_PASSWORD_HASH_SLOTS=value)
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)

    assert slots("3").stdout.strip() == "3"
    refused = slots("0")
    assert refused.returncode != 0 and "AEGIS_PASSWORD_HASH_SLOTS must be at least 1" in refused.stderr


HOLDER = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings")
import django
django.setup()
from accounts.ratelimits import password_check_slot
with password_check_slot():
    print("held", flush=True)
    sys.stdin.read()
"""
