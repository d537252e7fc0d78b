"""Record the reads a request issues and ask the real server how much each one examined.

`recording_queries()` swaps the app's MongoClient for one with a command listener (pymongo only
attaches listeners to clients created after they are registered), so every find, aggregate,
count and distinct the code under test sends is kept. `examined(command)` replays one through
`explain` with executionStats and returns the documents it examined and the plan's stages.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

from pymongo import monitoring

READS = ("find", "aggregate", "count", "distinct")
# Fields a driver adds to a command that `explain` must not see again.
_DRIVER_FIELDS = {"lsid", "$db", "$clusterTime", "txnNumber", "autocommit", "startTransaction", "$readPreference"}


@dataclass
class Recorded:
    label: str
    name: str
    command: dict


class _Listener(monitoring.CommandListener):
    def __init__(self):
        self.label = ""
        self.recording = False
        self.commands: list[Recorded] = []

    def started(self, event):
        if self.recording and event.command_name in READS:
            self.commands.append(Recorded(self.label, event.command_name, copy.deepcopy(dict(event.command))))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


_LISTENER = _Listener()
monitoring.register(_LISTENER)


def _reset_client():
    from django.db import connections
    from django_mongodb_backend.base import DatabaseWrapper

    connections["default"].close()
    DatabaseWrapper._connection_pools.clear()


@contextlib.contextmanager
def recording_queries():
    """Yields `record(label)`: a context manager under which reads are recorded with `label`."""
    _reset_client()  # the next client is created with the listener attached

    @contextlib.contextmanager
    def record(label: str):
        _LISTENER.label, _LISTENER.recording = label, True
        try:
            yield
        finally:
            _LISTENER.recording = False

    _LISTENER.commands = []
    try:
        yield record
    finally:
        _LISTENER.recording = False


def recorded() -> list[Recorded]:
    return list(_LISTENER.commands)


def examined(db, item: Recorded) -> tuple[int, set[str]]:
    """(documents examined, plan stage names) of one recorded read, from `explain`."""
    command = {k: v for k, v in item.command.items() if k not in _DRIVER_FIELDS}
    command.pop("readConcern", None)
    if item.name == "aggregate":
        command["cursor"] = {}
    answer = db.command({"explain": command, "verbosity": "executionStats"})
    stats, plans = [], []
    _collect(answer, stats, plans)
    stages: set[str] = set()
    for plan in plans:
        _stages(plan, stages)
    return sum(s.get("totalDocsExamined", 0) for s in stats), stages


def _collect(node, stats: list, plans: list) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "executionStats" and isinstance(value, dict):
                stats.append(value)
            elif key == "winningPlan" and isinstance(value, dict):
                plans.append(value)
            else:
                _collect(value, stats, plans)
    elif isinstance(node, list):
        for value in node:
            _collect(value, stats, plans)


def _stages(plan, found: set[str]) -> None:
    if isinstance(plan, dict):
        if "stage" in plan:
            found.add(plan["stage"])
        for key in ("inputStage", "queryPlan"):
            _stages(plan.get(key), found)
        for child in plan.get("inputStages", []):
            _stages(child, found)
