"""Staff and customers in their own OS processes, for the reversal concurrency and crash tests.

    python -m tests.disputes.procs SPEC_JSON

SPEC: {"barrier": true to print "ready" once set up and wait for a line on stdin (run_workers
       releases every process at once that way),
       "ops": [{"op": "approve"|"retry", "staff": user id, "proposal": id}
               | {"op": "propose", "staff": user id, "transaction": id, "amount": paise}
               | {"op": "transfer", "from": account id, "to": account id, "amount": paise, "key": str}, ...]}
Prints one JSON line per operation: {"op", "outcome": "ok"|"error"|"crash", "state" (a proposal's),
"id", "status" (a transfer's), "code"}.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def spawn(spec: dict, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.disputes.procs", json.dumps(spec)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def run_workers(specs: list[dict], env: dict, *, timeout: float = 300) -> list[list[dict]]:
    """Start one process per spec, release them together at a barrier, and return each one's lines."""
    procs = [spawn({**spec, "barrier": True}, {**env, **spec.get("env", {})}, stdin=subprocess.PIPE) for spec in specs]
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.stdout.readline()  # "ready", or "" from a process that died (its stderr says why below)
    for proc in procs:
        try:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0, err[-2000:]
        results.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    return results


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings")
    import django

    django.setup()
    from accounts.models import Account, User
    from aegis.errors import AegisError
    from disputes import services
    from transfers import exceptions as exc
    from transfers.services import transfer_create

    spec = json.loads(sys.argv[1])
    users: dict[str, User] = {}

    def user(pk: str) -> User:
        if pk not in users:
            users[pk] = User.objects.get(pk=pk)
        return users[pk]

    def owner_of(account_id: str) -> User:
        key = f"account-{account_id}"
        if key not in users:
            users[key] = Account.objects.select_related("user").get(pk=account_id).user
        return users[key]

    for op in spec["ops"]:  # lookups before the barrier, so the race starts at the first write
        owner_of(op["from"]) if op["op"] == "transfer" else user(op["staff"])
    if spec.get("barrier"):
        print("ready", flush=True)
        sys.stdin.readline()

    def run(op: dict) -> dict:
        line = {"op": op["op"], "key": op.get("key", "")}
        try:
            if op["op"] == "approve":
                proposal = services.reversal_approve(staff=user(op["staff"]), proposal_id=op["proposal"])
            elif op["op"] == "retry":
                proposal = services.reversal_retry(staff=user(op["staff"]), proposal_id=op["proposal"])
            elif op["op"] == "propose":
                proposal = services.reversal_propose(
                    staff=user(op["staff"]), transaction_id=op["transaction"], amount_paise=op["amount"]
                )
            else:
                txn = transfer_create(
                    actor=owner_of(op["from"]),
                    from_account_id=op["from"],
                    to_account_id=op["to"],
                    amount_paise=op["amount"],
                    idempotency_key=op["key"],
                ).transaction
                return {**line, "outcome": "ok", "status": txn["status"], "id": str(txn["_id"])}
            return {**line, "outcome": "ok", "state": proposal["state"], "id": str(proposal["_id"])}
        except exc.TransferFailed as failure:
            return {**line, "outcome": "error", "code": failure.code, "status": failure.transaction["status"]}
        except AegisError as error:
            return {**line, "outcome": "error", "code": error.code}
        except Exception as error:  # a crash is a finding: report it, never hide it
            return {**line, "outcome": "crash", "code": type(error).__name__, "message": str(error)[:300]}

    for op in spec["ops"]:
        print(json.dumps(run(op)), flush=True)


if __name__ == "__main__":
    main()
