"""Login throttles hold across worker processes: the counters live in MongoDB (accounts.ratelimits),
so attempts made by one OS process count against the budget another one sees. Per-process
counters would let every process have the full budget. (The bound on password checks in
flight, shared by processes through flocks, is tested in test_login_hashing.py.)"""

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]


def worker(env, pattern: str, ip: str, count: int, start_at: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.security.login_worker", pattern, ip, str(count), str(start_at)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def statuses(process: subprocess.Popen) -> list[int]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_failed_login_limits_span_processes(subprocess_env):
    user = make_user()
    env = dict(subprocess_env, AEGIS_RATELIMIT_LOGIN="5/15m", AEGIS_RATELIMIT_LOGIN_ACCOUNT="7/15m")
    env.update(AEGIS_RATELIMIT_STRICT="1000/15m", AEGIS_RATELIMIT_GLOBAL="1000/15m")
    assert statuses(worker(env, user.email, "10.60.0.1", 3)) == [401, 401, 401]
    # A second process, the same address: that address has 2 failures left, then 429.
    assert statuses(worker(env, user.email, "10.60.0.1", 4)) == [401, 401, 429, 429]
    # A third process, another address: 5 failures so far, the ceiling is 7. Over it, an address
    # that has failed twice (OVER_CEILING_ALLOWANCE) waits: the count spans every process.
    assert statuses(worker(env, user.email, "10.60.0.2", 4)) == [401, 401, 429, 429]


def test_per_ip_limit_spans_concurrent_processes(subprocess_env):
    env = dict(subprocess_env, AEGIS_RATELIMIT_STRICT="10/15m", AEGIS_RATELIMIT_LOGIN="1000/15m")
    # Both processes hash at once: give them a slot each, so only the strict limit answers 429.
    env.update(AEGIS_RATELIMIT_GLOBAL="1000/15m", AEGIS_PASSWORD_HASH_SLOTS="2")
    start_at = time.time() + 4  # both processes are up and connected by then
    first = worker(env, "first-{i}@example.com", "10.61.0.1", 8, start_at)
    second = worker(env, "second-{i}@example.com", "10.61.0.1", 8, start_at)
    seen = statuses(first) + statuses(second)
    # 16 attempts from one IP across two processes: exactly the 10 the limit allows got through.
    assert sorted(seen) == [401] * 10 + [429] * 6
