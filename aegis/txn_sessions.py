"""The lease on an account's gate: open transactions of processes that died are ended at once.

With the gate (docs/transfer-engine.md "Hot accounts") a money transaction holds its two account
documents from its first command to its commit. A live holder lets go within its deadline (every
command is bounded, and the abort is always sent). A holder killed with its transaction open
(SIGKILL, the OOM killer, gunicorn's worker timeout) sends nothing: the server keeps that
transaction, and every transfer of those accounts queues behind it, until the server's own
transaction lifetime ends it (60 s on the embedded server, which cannot be lowered;
`transactionLifetimeLimitSeconds` on MongoDB).

So every process that runs transactions notes the logical session ids it uses in a file of its
own, `VAR_DIR/txn-sessions/<host>.<pid namespace>--<pid>-<start time>.lsids` (a line per id,
written once: pymongo reuses a handful of server sessions per process), and the recovery sweeper
(`manage.py recover_transfers --loop`, every 5 s beside the web workers) ends the sessions of
every process of this host that is gone with `killSessions`, which aborts their transactions and
frees what they held. A dead holder therefore blocks its accounts for at most one sweep. The
start time in the name tells a reused pid from the process that wrote the file; a sweeper judges
only the files of its own host and pid namespace, and a process it cannot be sure is gone (its
start time unreadable) counts as alive. A host that dies
whole takes its sweeper with it: then the server's lifetime is the bound, as before.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import socket
from pathlib import Path

from bson import Binary
from django.conf import settings
from pymongo.errors import PyMongoError

logger = logging.getLogger("aegis.mongo")

_noted: set[bytes] = set()
_noted_pid = 0


def _directory() -> Path:
    return Path(settings.VAR_DIR) / "txn-sessions"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" where /proc is not there)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after the name


def _alive(pid: int, started: str) -> bool:
    """Dead only when sure: no such pid, or the pid now belongs to a process started later."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        pass
    now = _start_time(pid)
    return not started or not now or now == started  # an unreadable start time counts as alive


def _host() -> str:
    """This host and pid namespace: a sweeper only judges pids it can see (VAR_DIR may be shared)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}.{namespace}"


def _file_for(pid: int) -> Path:
    return _directory() / f"{_host()}--{pid}-{_start_time(pid)}.lsids"


def note_session(session) -> None:
    """Remember `session`'s id for this process, so a sweeper can end it if the process dies."""
    global _noted_pid
    if _noted_pid != os.getpid():  # a forked child (a gunicorn worker) starts its own list
        _noted.clear()
        _noted_pid = os.getpid()
    lsid = bytes(session.session_id["id"])
    if lsid in _noted:
        return
    try:
        path = _file_for(_noted_pid)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(lsid.hex() + "\n")
    except OSError:  # without the note only the server's lifetime bounds a dead holder
        logger.warning("could not note transaction session %s", lsid.hex())
        return
    if not _noted:  # a process that exits on its own leaves nothing open
        atexit.register(_forget, path, _noted_pid)
    _noted.add(lsid)


def _forget(path: Path, pid: int) -> None:
    if os.getpid() == pid:  # not a forked child's exit: the file is its parent's
        path.unlink(missing_ok=True)


def sessions_of_dead_processes_end(client) -> int:
    """Send `killSessions` for the sessions of every process of this host that died; returns how
    many processes' sessions were ended. Run by the recovery sweeper before it recovers claims."""
    directory = _directory()
    if not directory.is_dir():
        return 0
    ended = 0
    for path in directory.glob(f"{glob.escape(_host())}--*.lsids"):
        pid_text, _, started = path.stem.rpartition("--")[2].partition("-")
        try:
            pid = int(pid_text)
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid, started):
            continue
        try:
            ids = [Binary(bytes.fromhex(line), 4) for line in path.read_text().split()]
            if ids:
                client.admin.command({"killSessions": [{"id": lsid} for lsid in ids]})
            path.unlink(missing_ok=True)
            ended += 1
        except (OSError, ValueError, PyMongoError) as error:  # the next sweep tries again
            logger.warning("could not end the sessions of dead process %s: %s", pid, error)
    return ended
