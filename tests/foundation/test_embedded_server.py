"""The embedded server: restart keeps data; busy ports and dead databases give one clear line."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pymongo import MongoClient

from aegis import embedded

ROOT = Path(__file__).resolve().parents[2]


def test_restart_keeps_data(tmp_path):
    data_dir = tmp_path / "embedded"
    server = embedded.ensure_running(data_dir, port=embedded.free_port())
    try:
        # A second call reuses the running server instead of starting another.
        assert embedded.ensure_running(data_dir).pid == server.pid
        client = MongoClient(server.uri)
        client.aegis_restart.things.insert_one({"_id": 1, "paise": 150000})
        client.close()
    finally:
        assert embedded.stop_running(data_dir)
    assert not embedded.pid_alive(server.pid)

    restarted = embedded.ensure_running(data_dir, port=embedded.free_port())
    try:
        assert restarted.pid != server.pid
        client = MongoClient(restarted.uri)
        assert client.aegis_restart.things.find_one({"_id": 1}) == {"_id": 1, "paise": 150000}
        client.close()
    finally:
        embedded.stop_running(data_dir)


def test_busy_port_is_reported_clearly(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(embedded.EmbeddedServerError, match=f"port {port} .* already in use"):
            embedded.start(storage=str(tmp_path / "db"), port=port)
        result = subprocess.run(
            [sys.executable, "-m", "aegis.embedded", "start", "--data", str(tmp_path / "d"), "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr


def _dead_uri():
    return embedded.uri_for(embedded.free_port())


def test_unreachable_database_is_one_clear_line():
    env = dict(os.environ, MONGODB_URI=_dead_uri(), AEGIS_DB_TIMEOUT_MS="300")
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach MongoDB at " + env["MONGODB_URI"] in lines[0]
    assert "MONGODB_URI" in lines[0]


def test_healthz_is_503_when_the_database_is_down():
    script = (
        "import django; django.setup();"
        "from django.test import Client; r = Client().get('/healthz');"
        "print(r.status_code, r.json()['status'])"
    )
    env = dict(os.environ, MONGODB_URI=_dead_uri(), AEGIS_DB_TIMEOUT_MS="300", DJANGO_SETTINGS_MODULE="aegis.settings")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["503", "unavailable"], result.stderr


def test_healthz_is_200_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
