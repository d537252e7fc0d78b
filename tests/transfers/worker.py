"""A transfer client in its own OS process, for the concurrency and crash tests.

    python -m tests.transfers.worker SPEC_JSON

SPEC: {"barrier": true to print "ready" once set up and wait for a line on stdin before the
       first operation (run_workers releases every process at once that way),
       "ops": [{"op": "transfer"|"fund", "from": id, "to": id, "amount": paise, "key": str}, ...]}
Prints one JSON line per operation: {"key", "outcome", "status", "retry_count", "code"}, then
{"stats": {"queue_waits", "conflict_retries"}} (this process's engine counters).
"""

import json
import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings")
    import django

    django.setup()
    from accounts.models import Account, User
    from aegis.errors import AegisError
    from transfers import exceptions as exc
    from transfers.services import system_fund, transfer_create

    spec = json.loads(sys.argv[1])
    owners: dict[str, User] = {}
    system_user = None

    def owner_of(account_id: str) -> User:
        if account_id not in owners:
            owners[account_id] = Account.objects.select_related("user").get(pk=account_id).user
        return owners[account_id]

    for op in spec["ops"]:  # warm up lookups before the barrier
        if op["op"] == "transfer":
            owner_of(op["from"])
        elif system_user is None:
            system_user = User.objects.get(is_system=True)
    if spec.get("barrier"):
        print("ready", flush=True)
        sys.stdin.readline()

    def run(op: dict) -> dict:
        # A real client's rule for 503 "not confirmed" (and, when the spec says so, 409 "in
        # flight"): ask again with the same key, a few times.
        retry_codes = set(spec.get("retry_codes", ["transfer_busy"]))
        for busy in range(spec.get("busy_retries", 5) + 1):
            line = attempt(op)
            if line.get("code") not in retry_codes:
                break
            time.sleep(0.05 * (busy + 1))
        line["busy"] = busy
        return line

    def attempt(op: dict) -> dict:
        line = {"key": op["key"]}
        try:
            if op["op"] == "transfer":
                result = transfer_create(
                    actor=owner_of(op["from"]),
                    from_account_id=op["from"],
                    to_account_id=op["to"],
                    amount_paise=op["amount"],
                    idempotency_key=op["key"],
                )
            else:
                result = system_fund(
                    actor=system_user, to_account_id=op["to"], amount_paise=op["amount"], idempotency_key=op["key"]
                )
            txn = result.transaction
            line.update(
                outcome="replayed" if result.replayed else "completed",
                status=txn["status"],
                retry_count=txn["retry_count"],
                id=str(txn["_id"]),
            )
        except exc.TransferFailed as failure:
            txn = failure.transaction
            line.update(
                outcome="failed",
                status=txn["status"],
                retry_count=txn["retry_count"],
                code=failure.code,
                id=str(txn["_id"]),
            )
        except exc.RetriesExhausted as failure:
            line.update(
                outcome="exhausted", status="FAILED", retry_count=failure.transaction["retry_count"], code=failure.code
            )
        except AegisError as error:
            line.update(outcome="error", code=error.code, http=error.status)
        except Exception as error:  # a crash is a finding: report it, never hide it
            line.update(outcome="crash", code=type(error).__name__, message=str(error)[:300])
        return line

    for op in spec["ops"]:
        print(json.dumps(run(op)), flush=True)
    from aegis import mongo

    print(json.dumps({"stats": {"queue_waits": mongo.queue_waits, "conflict_retries": mongo.conflict_retries}}))


if __name__ == "__main__":
    main()
