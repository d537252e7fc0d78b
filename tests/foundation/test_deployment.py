"""The start-up check of the connected deployment and the app's least-privilege role."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from aegis.deployment import (
    app_collections,
    app_role_command,
    deployment_findings,
    lifetime_finding,
    topology_findings,
    write_concern_finding,
)
from aegis.mongo import get_client


def test_the_embedded_server_offers_what_the_engine_needs():
    findings = deployment_findings(get_client())
    assert all(f.level == "ok" for f in findings), findings
    out = StringIO()
    call_command("check_deployment", "--strict", stdout=out)
    assert "replica set 'secantus': transactions are available" in out.getvalue()


@pytest.mark.parametrize(
    ("hello", "warns"),
    [
        ({"isWritablePrimary": True}, ["a standalone server"]),
        ({"setName": "rs0"}, []),
        ({"msg": "isdbgrid"}, []),
        ({"setName": "rs0", "arbiters": ["h3:27017"]}, ["has an arbiter"]),
    ],
)
def test_topology(hello, warns):
    found = [f.text for f in topology_findings(hello) if f.level == "warning"]
    assert len(found) == len(warns) and all(w in text for w, text in zip(warns, found, strict=True))


def test_write_concern_and_lifetime():
    assert write_concern_finding({"defaultWriteConcern": {"w": 1}}).level == "warning"
    assert write_concern_finding({"defaultWriteConcern": {"w": "majority"}}).level == "ok"
    assert write_concern_finding(None).level == "ok"  # not reported: the app sets majority itself
    assert lifetime_finding({"transactionLifetimeLimitSeconds": 5}, 10.0).level == "warning"  # aborts live ones
    assert lifetime_finding({"transactionLifetimeLimitSeconds": 60}, 10.0).level == "warning"  # MongoDB's default
    assert lifetime_finding({"transactionLifetimeLimitSeconds": 30}, 10.0).level == "ok"
    assert lifetime_finding({}, 10.0).level == "ok"


def test_the_app_role_appends_only_to_the_ledger_and_the_audit_log(db_name):
    out = StringIO()
    call_command("print_app_role", stdout=out)
    text = out.getvalue()
    assert text.startswith('db.getSiblingDB("admin").createRole({') and 'role: "aegisApp"' in text
    granted = dict(re.findall(rf'db: "{db_name}", collection: "([a-z_]+)" \}}, actions: \[([^\]]*)\]', text))
    assert set(granted) == set(app_collections()) >= {"ledger_entries", "audit_logs", "transactions", "accounts"}
    for table, actions in granted.items():
        expected = (
            '"find", "insert"' if table in ("ledger_entries", "audit_logs") else '"find", "insert", "update", "remove"'
        )
        assert actions == expected, table
    assert "createIndex" not in text and "dropCollection" not in text
    assert app_role_command(database="bank", role="r").count('db: "bank"') == len(granted)
