"""What the connected MongoDB deployment must offer the engine, checked at start-up, and the
least-privilege role the app should connect as (docs/deployment.md).

The engine needs multi-document transactions (a replica set or a sharded cluster), majority
writes that can be acknowledged (no arbiter standing in for a data-bearing member), and a
transaction lifetime close to the transfer deadline, so a transaction whose client died lets its
documents go soon after every live one would have given up.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from pymongo.errors import OperationFailure, PyMongoError

# Collections the app only ever inserts into and reads: the role grants nothing else on them.
APPEND_ONLY_TABLES = ("ledger_entries", "audit_logs")
# Django's own collections the app uses at run time (sessions); migrations are the deployer's job.
DJANGO_RUNTIME_TABLES = ("django_session",)
READ_WRITE_ACTIONS = ("find", "insert", "update", "remove")
APPEND_ONLY_ACTIONS = ("find", "insert")
# Lifetimes within this many transfer deadlines are "near" the deadline.
LIFETIME_SLACK = 3


@dataclass(frozen=True)
class Finding:
    level: str  # "ok" | "warning"
    text: str


def deployment_findings(client, *, deadline_seconds: float | None = None) -> list[Finding]:
    """Read-only checks of the deployment behind `client`; a command it lacks is reported, never raised."""
    deadline = float(deadline_seconds or settings.AEGIS_TRANSFER_DEADLINE_SECONDS)
    hello = client.admin.command("hello")
    return [
        *topology_findings(hello),
        write_concern_finding(_answer(client, {"getDefaultRWConcern": 1})),
        lifetime_finding(_answer(client, {"getParameter": 1, "transactionLifetimeLimitSeconds": 1}), deadline),
    ]


def _answer(client, command: dict) -> dict | None:
    try:
        return client.admin.command(command)
    except (OperationFailure, PyMongoError):
        return None  # not offered by this server (the embedded one lacks some admin commands)


def topology_findings(hello: dict) -> list[Finding]:
    """From the `hello` answer: transactions need a replica set or mongos; an arbiter weakens majority."""
    if hello.get("msg") == "isdbgrid":
        found = [Finding("ok", "a sharded cluster (mongos): transactions are available")]
    elif hello.get("setName"):
        found = [Finding("ok", f"replica set {hello['setName']!r}: transactions are available")]
    else:
        found = [
            Finding("warning", "a standalone server: transfers need multi-document transactions, "
                    "which only a replica set or a sharded cluster offers (a one-member replica set will do)")
        ]  # fmt: skip
    if hello.get("arbiterOnly") or hello.get("arbiters"):
        found.append(
            Finding("warning", "the replica set has an arbiter: with one data-bearing member down, "
                    "majority writes (every transfer) wait until their deadline and fail")
        )  # fmt: skip
    return found


def write_concern_finding(answer: dict | None) -> Finding:
    """From `getDefaultRWConcern`: the app sets w=majority itself; other writers get the default."""
    if answer is None:
        return Finding("ok", "no cluster-wide default write concern reported; the app writes money with w=majority")
    w = (answer.get("defaultWriteConcern") or {}).get("w", "majority")
    if w != "majority":
        return Finding(
            "warning",
            f"the cluster's default write concern is w={w!r}: the app writes money with w=majority "
            "regardless, but other writers (scripts, restores) would not",
        )
    return Finding("ok", "the default write concern is majority")


def lifetime_finding(answer: dict | None, deadline: float) -> Finding:
    """From `getParameter`: the server's transaction lifetime against the transfer deadline."""
    lifetime = (answer or {}).get("transactionLifetimeLimitSeconds")
    if lifetime is None:
        return Finding("ok", "transactionLifetimeLimitSeconds is not reported by this server")
    if lifetime < deadline:
        return Finding(
            "warning",
            f"transactionLifetimeLimitSeconds={lifetime} is shorter than the transfer deadline "
            f"({deadline:g} s): slow transfers would be aborted by the server",
        )
    if lifetime > deadline * LIFETIME_SLACK:
        return Finding(
            "warning",
            f"transactionLifetimeLimitSeconds={lifetime}: a transaction left by a crashed worker holds "
            f"its accounts that long; set it near the transfer deadline ({deadline:g} s), e.g. {int(deadline * 3)}",
        )
    return Finding("ok", f"transactionLifetimeLimitSeconds={lifetime} is near the transfer deadline")


def app_collections() -> list[str]:
    """Every collection the app's models use, with Django's run-time ones, sorted."""
    tables = {model._meta.db_table for model in apps.get_models()}
    return sorted(tables | set(DJANGO_RUNTIME_TABLES))


def app_role_command(*, database: str, role: str = "aegisApp") -> str:
    """The mongosh `createRole` command for the app's least-privilege role."""
    privileges = []
    for table in app_collections():
        actions = APPEND_ONLY_ACTIONS if table in APPEND_ONLY_TABLES else READ_WRITE_ACTIONS
        action_list = ", ".join(f'"{action}"' for action in actions)
        privileges.append(
            f'    {{ resource: {{ db: "{database}", collection: "{table}" }}, actions: [{action_list}] }}'
        )
    body = ",\n".join(privileges)
    return f'db.getSiblingDB("admin").createRole({{\n  role: "{role}",\n  privileges: [\n{body}\n  ],\n  roles: []\n}})'
