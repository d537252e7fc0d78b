"""The lease on a dead holder's open transaction: which session files the sweeper ends, and which it
must leave alone (a live process, another host's process, a parent whose forked child exits)."""

import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from aegis import txn_sessions
from aegis.mongo import get_client
from aegis.txn_sessions import _host, _start_time, sessions_of_dead_processes_end
from tests.transfers.procs import ROOT


@pytest.fixture
def session_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    directory = tmp_path / "txn-sessions"
    directory.mkdir()
    return directory


def _note(directory, name: str):
    path = directory / f"{name}.lsids"
    path.write_text(uuid.uuid4().hex + "\n")  # a session id the server does not know: killSessions is a no-op
    return path


@pytest.fixture
def live_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_only_the_files_of_processes_that_are_surely_gone_are_ended(session_dir, live_process, bank):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = _note(session_dir, f"{_host()}--{live_process.pid}-{_start_time(live_process.pid)}")
    reused = _note(session_dir, f"{_host()}--{live_process.pid}-1")  # same pid, an older process
    dead = _note(session_dir, f"{_host()}--{gone.pid}-12345")
    elsewhere = _note(session_dir, f"another-host.4026531836--{gone.pid}-12345")

    assert sessions_of_dead_processes_end(get_client()) == 2

    assert live.exists()  # alive: its transactions are its own business
    assert not reused.exists() and not dead.exists()
    assert elsewhere.exists()  # another host's or namespace's pid: this sweeper cannot judge it


def test_an_unreadable_start_time_counts_as_alive(session_dir, live_process, monkeypatch, bank):
    path = _note(session_dir, f"{_host()}--{live_process.pid}-999")
    monkeypatch.setattr(txn_sessions, "_start_time", lambda pid: "")  # as under /proc hidepid
    assert sessions_of_dead_processes_end(get_client()) == 0
    assert path.exists()


def test_a_forked_child_exiting_leaves_its_parents_file(tmp_path):
    script = textwrap.dedent(
        """
        import json, os, sys, uuid
        os.environ["DJANGO_SETTINGS_MODULE"] = "aegis.settings"
        import django
        django.setup()
        from bson import Binary
        from django.conf import settings
        from aegis.txn_sessions import note_session

        class Session:
            def __init__(self):
                self.session_id = {"id": Binary(uuid.uuid4().bytes, 4)}

        note_session(Session())
        child = os.fork()
        if child == 0:
            note_session(Session())
            sys.exit(0)  # runs the atexit handlers it inherited from its parent
        os.waitpid(child, 0)
        files = sorted(p.name for p in (settings.VAR_DIR / "txn-sessions").iterdir())
        print(json.dumps({"parent": os.getpid(), "files": files}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "AEGIS_VAR_DIR": str(tmp_path)},
        cwd=ROOT,
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # The parent's file is still there; the child's own went with the child's exit.
    assert len(seen["files"]) == 1 and f"--{seen['parent']}-" in seen["files"][0], seen
