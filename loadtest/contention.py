"""`make bench-contention`: transfers through the JSON API when many of them touch the same accounts.

Starts an embedded server (on disk, --sync-on-commit), funds 100 accounts (each owned by its
own user), and drives POST /api/transactions under gunicorn with C client processes
(keep-alive HTTP/1.1, Bearer tokens, a 503 retried with the same idempotency key) for D
seconds per scenario, amounts random ₹1–50:
- uniform:      random sender and receiver among the first N accounts (any client, any sender);
- hot-sender:   one account pays 15 others;
- hot-receiver: 15 accounts (one per client) pay one;
- uniform-100:  the `make bench` shape (each client its own senders, any of 100 receivers), so
                a gain under contention is never paid for without contention.
With --gate-compare (the default) every scenario runs under gunicorn started with
AEGIS_TRANSFER_GATE=off (the optimistic protocol) and with =on, the order alternated per round,
and prints both and the ratio on/off. Per run: completed/s (201, or 200 for a same-key replay),
FAILED transactions by failure_code, final HTTP statuses, 503s given up after the retries,
p50/p95/p99 of completed transfers (retries included) and `reconcile` afterwards. Ends with a
verdict against the targets of issue 15 (medians over rounds, gate on). Exits 1 if reconcile
finds a violation or a request got a 5xx other than 503; a missed target only prints NOT met.

    python -m loadtest.contention [--accounts 10] [--clients 16] [--workers 4] [--seconds 30]
        [--rounds 1] [--scenarios uniform,hot-sender,hot-receiver,uniform-100]
        [--no-gate-compare] [--json FILE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

from loadtest import setup

SCENARIOS = ("uniform", "hot-sender", "hot-receiver", "uniform-100")
HOT_PEERS = 15  # the shape: one hot account and 15 on the other side
WIDE = 100  # accounts of uniform-100, and of the whole bank the tool creates
RETRIES = 3  # same-key retries of a 503 "not confirmed" after the first attempt
ORIGINAL = "original (issue 15, not this run): uniform 9.6–11.8/s p99 510–630 ms; hot 4.6–5.3/s p99 470–510 ms"
# (scenario, completed/s at least, p99 ms at most)
TARGETS = (("uniform", 45, 1000), ("hot-sender", 25, 1000), ("hot-receiver", 25, 1000))
# Funding ceiling: enough for every run at this rate, so insufficient_funds never shows up.
CEILING_RATE, MEAN_AMOUNT_PAISE = 200, 2_550

# --- client side ------------------------------------------------------------------------------


def client(spec: dict) -> dict:
    """One client process (also `make bench`'s): POST /api/transactions in a loop, a 503 retried
    with the same key; `amount_paise` [low, high] (default ₹1–50)."""
    rng = random.Random(spec["seed"])
    low, high = spec.get("amount_paise", (100, 5000))
    connect = lambda: http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=60)  # noqa: E731
    conn = connect()
    latencies, statuses, retried = [], Counter(), 0
    time.sleep(max(0.0, spec["start_at"] - time.time()))
    end = time.monotonic() + spec["seconds"]
    while time.monotonic() < end:
        sender = rng.choice(spec["senders"])
        receiver = rng.choice([r for r in spec["receivers"] if r != sender["account"]])
        body = json.dumps(
            {
                "fromAccount": sender["account"],
                "toAccount": receiver,
                "amount": f"{rng.randint(low, high) / 100:.2f}",
                "idempotencyKey": uuid.uuid4().hex,
            }
        )
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {sender['token']}",
            "X-Forwarded-Proto": "https",
        }
        started = time.perf_counter()
        for attempt in range(1 + RETRIES):
            try:
                conn.request("POST", "/api/transactions", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = connect()
                status = 599  # connection error
            if status != 503 or attempt == RETRIES:
                break
            retried += 1
        statuses[status] += 1
        if status in (200, 201):  # 200 only answers a retry whose first attempt did complete
            latencies.append(time.perf_counter() - started)
    return {"latencies": latencies, "statuses": dict(statuses), "retried": retried}


# --- driver side ------------------------------------------------------------------------------


def _specs(name: str, people: list[dict], *, accounts: int, clients: int) -> list[dict]:
    """Each client's senders (account + owner's token) and receivers for scenario `name`."""
    ids = [p["account"] for p in people]
    if name == "uniform":
        return [{"senders": people[:accounts], "receivers": ids[:accounts]}] * clients
    if name == "hot-sender":
        return [{"senders": people[:1], "receivers": ids[1 : 1 + HOT_PEERS]}] * clients
    if name == "hot-receiver":
        return [{"senders": [people[1 + i % HOT_PEERS]], "receivers": ids[:1]} for i in range(clients)]
    share = max(1, WIDE // clients)
    return [{"senders": people[i * share : (i + 1) * share] or people, "receivers": ids} for i in range(clients)]


def _fund(people: list[dict], *, funder, runs: int, seconds: float) -> None:
    """Top up the accounts the contended scenarios send from, enough for every run at the ceiling rate."""
    from aegis.money import MAX_TRANSFER_PAISE
    from transfers.services import system_fund

    need = runs * seconds * CEILING_RATE * MEAN_AMOUNT_PAISE
    # The hot sender pays every transfer of its scenario; each other one under a quarter of any run's.
    for i, person in enumerate(people[: 1 + HOT_PEERS]):
        for n in range(math.ceil((need if i == 0 else need / 4) / MAX_TRANSFER_PAISE)):
            system_fund(
                actor=funder, to_account_id=person["account"], amount_paise=MAX_TRANSFER_PAISE,
                idempotency_key=f"contention-top-up-{i}-{n}",
            )  # fmt: skip


def _failed_by_code(since: datetime, until: datetime) -> dict[str, int]:
    from aegis.mongo import collection
    from transfers.models import Transaction

    # Bounded at both ends on (status, created_at, _id): cheap on the embedded server.
    query = {"status": "FAILED", "created_at": {"$gte": since, "$lte": until}}
    return dict(Counter(row["failure_code"] or "?" for row in collection(Transaction).find(query, {"failure_code": 1})))


def _run(name: str, gate: str | None, specs: list[dict], *, args, env: dict) -> dict:
    """One scenario under a fresh gunicorn (AEGIS_TRANSFER_GATE=`gate` unless None), then reconcile."""
    from aegis import embedded
    from ledger.reconcile import ledger_reconcile

    port = embedded.free_port()
    gunicorn_env = env if gate is None else {**env, "AEGIS_TRANSFER_GATE": gate}
    gunicorn = setup.start_gunicorn(
        port=port, workers=args.workers, env=gunicorn_env, log_level="warning", extra=("--keep-alive", "30")
    )
    try:
        setup.wait_http(port, gunicorn)
        since, start_at = datetime.now(UTC), time.time() + 2.0
        procs = [
            setup.start_child(
                "loadtest.contention",
                "--client",
                {**spec, "port": port, "seed": i, "seconds": args.seconds, "start_at": start_at},
                env=env,
            )
            for i, spec in enumerate(specs)
        ]
        latencies, statuses, retried = [], Counter(), 0
        for proc in procs:
            result = setup.child_result(proc, timeout=args.seconds + 300)
            latencies += result["latencies"]
            statuses.update({int(k): v for k, v in result["statuses"].items()})
            retried += result["retried"]
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
    failed = _failed_by_code(since, datetime.now(UTC))
    report = ledger_reconcile()
    pct = {f"p{q}": setup.percentile(latencies, q / 100) * 1000 for q in (50, 95, 99)}
    return {
        "scenario": name, "gate": gate or "default", "completed": len(latencies),
        "rate": len(latencies) / args.seconds, **pct, "failed": failed, "statuses": dict(sorted(statuses.items())),
        "gave_up": statuses.get(503, 0), "retried_503": retried,
        "reconcile_ok": report.ok, "violations": report.violations[:20],
    }  # fmt: skip


def _median(runs: list[dict]) -> dict:
    """Runs of one scenario and gate folded into one: medians of the figures, sums of the counts."""
    failed, statuses = Counter(), Counter()
    for r in runs:
        failed.update(r["failed"])
        statuses.update(r["statuses"])
    return {
        **runs[0],
        **{k: statistics.median(r[k] for r in runs) for k in ("rate", "p50", "p95", "p99")},
        **{k: sum(r[k] for r in runs) for k in ("completed", "gave_up", "retried_503")},
        "failed": dict(failed), "statuses": dict(sorted(statuses.items())),
        "reconcile_ok": all(r["reconcile_ok"] for r in runs), "violations": [v for r in runs for v in r["violations"]],
    }  # fmt: skip


def _line(r: dict) -> str:
    reconcile = "OK" if r["reconcile_ok"] else f"{len(r['violations'])} VIOLATION(S): {r['violations'][:1]}"
    return (
        f"  {r['scenario']:12s} gate {r['gate']:7s} {r['rate']:6.1f} completed/s  p50 {r['p50']:6.0f}  "
        f"p95 {r['p95']:6.0f}  p99 {r['p99']:6.0f} ms  FAILED {r['failed'] or 0}  HTTP {r['statuses']}  "
        f"gave up {r['gave_up']} (503s retried {r['retried_503']})  reconcile {reconcile}"
    )


def _ratio(on: dict, off: dict) -> str:
    rate, p99 = (on[k] / off[k] if off[k] else float("nan") for k in ("rate", "p99"))
    return f"  {on['scenario']:12s} on/off: completed/s ×{rate:.2f}  p99 ×{p99:.2f}"


def _verdict(final: dict[tuple[str, str], dict], gate: str) -> list[str]:
    """The targets of issue 15, judged on the gate-on medians (or the only runs)."""
    lines = [f"verdict (gate {gate}, median over rounds; a miss does not change the exit code):"]
    met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    for name, rate, p99 in TARGETS:
        if r := final.get((name, gate)):
            ok = r["rate"] >= rate and r["p99"] <= p99
            lines.append(
                f"  {name:12s} >= {rate}/s and p99 <= {p99} ms: {r['rate']:.1f}/s, p99 {r['p99']:.0f} ms  {met(ok)}"
            )
    wide_on, wide_off = final.get(("uniform-100", "on")), final.get(("uniform-100", "off"))
    if wide_on and wide_off:
        ratio = wide_on["rate"] / wide_off["rate"]
        lines.append(
            f"  uniform-100  no slower with the gate (on/off >= 0.90, for noise): ×{ratio:.2f}  {met(ratio >= 0.9)}"
        )
    failed = sum(n for r in final.values() for n in r["failed"].values())
    lines.append(f"  zero FAILED (any cause, any run): {failed}  {met(not failed)}")
    lines.append(f"  reconcile clean after every run: {met(all(r['reconcile_ok'] for r in final.values()))}")
    return lines


def main(argv: list[str] | None = None) -> int:
    numbers = {"accounts": 10, "clients": 16, "workers": 4, "seconds": 30.0, "rounds": 1}
    parser = setup.tool_parser("python -m loadtest.contention", __doc__, numbers, child_flag="--client")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--gate-compare", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", metavar="FILE", help="write the raw figures of every run here")
    args = parser.parse_args(argv)
    if args.client:
        return setup.run_child(client, args.client)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if unknown := set(scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if not 2 <= args.accounts <= WIDE:
        parser.error(f"--accounts must be between 2 and {WIDE}")
    gates = ("off", "on") if args.gate_compare else (None,)

    with setup.embedded_django(
        tmp_prefix="aegis-bench-contention-", db_name="bench_contention",
        env={**setup.gunicorn_env(), "AEGIS_LOG_LEVEL": "WARNING"},
    ) as harness:  # fmt: skip
        from django.core.management import call_command

        call_command("collectstatic", interactive=False, verbosity=0)  # as a deployment would
        print(ORIGINAL)
        print(
            f"contention: {args.clients} clients, gunicorn x{args.workers}, {args.accounts} accounts "
            f"(uniform-100: {WIDE}), {args.seconds:g}s per run, {args.rounds} round(s), "
            f"gate {'off vs on' if args.gate_compare else 'as configured'}, {os.cpu_count()} cores, "
            f"embedded server on disk (--sync-on-commit); funding accounts ...",
            flush=True,
        )
        people = setup.funded_users(count=WIDE, prefix="contention", funder=harness.system_user)
        _fund(people, funder=harness.system_user, runs=args.rounds * len(gates), seconds=args.seconds)

        runs: list[dict] = []
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}", flush=True)
            for name in scenarios:
                specs = _specs(name, people, accounts=args.accounts, clients=args.clients)
                by_gate = {}
                for gate in gates if rnd % 2 == 0 else gates[::-1]:
                    by_gate[gate] = _run(name, gate, specs, args=args, env=harness.env)
                    runs.append({**by_gate[gate], "round": rnd + 1})
                    print(_line(by_gate[gate]), flush=True)
                if args.gate_compare:
                    print(_ratio(by_gate["on"], by_gate["off"]), flush=True)

        final = {
            (name, gate or "default"): _median(
                [r for r in runs if r["scenario"] == name and r["gate"] == (gate or "default")]
            )
            for name in scenarios
            for gate in gates
        }
        if args.rounds > 1:
            print(f"median over {args.rounds} rounds:")
            for name in scenarios:
                for gate in gates:
                    print(_line(final[(name, gate or "default")]))
                if args.gate_compare:
                    print(_ratio(final[(name, "on")], final[(name, "off")]))
        verdict = _verdict(final, "on" if args.gate_compare else "default")
        print("\n".join(verdict))
        server_errors = sum(n for r in runs for s, n in r["statuses"].items() if s >= 500 and s != 503)
        if server_errors:
            print(f"FAIL: {server_errors} answer(s) with a 5xx other than 503")
        if args.json:
            with open(args.json, "w") as out:
                json.dump(
                    {"args": vars(args), "runs": runs, "median": list(final.values()), "verdict": verdict},
                    out,
                    indent=2,
                )
        return 0 if all(r["reconcile_ok"] for r in runs) and not server_errors else 1


if __name__ == "__main__":
    sys.exit(main())
