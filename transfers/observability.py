"""The transfer outcome: one log line on `aegis.transfers` and the per-process metrics per call.

`observe_transfer(kind, call)` wraps a transfer service call (API and pages alike) and records
its latency histogram and outcome counter (`aegis.observability.transfer_observed`).
"""

from __future__ import annotations

import logging
import time

from aegis.errors import AegisError
from aegis.observability import current_request_id, transfer_observed
from transfers import exceptions as exc

transfer_logger = logging.getLogger("aegis.transfers")


def _outcome(error: Exception | None, result) -> tuple[str, dict]:
    if error is None:
        return ("replayed" if result.replayed else "completed"), result.transaction
    if isinstance(error, exc.TransferFailed | exc.RetriesExhausted):
        return "failed", error.transaction
    if isinstance(error, exc.TransferBusy):
        return "busy", {}
    if isinstance(error, exc.TransferInFlight):
        return "in_flight", {}
    if isinstance(error, AegisError):
        return "rejected", {}
    return "error", {}


def observe_transfer(kind: str, call):
    """Run `call()` (a transfer service call) and log/measure its outcome; re-raises its errors."""
    started = time.perf_counter()
    error = result = None
    try:
        result = call()
        return result
    except Exception as raised:
        error = raised
        raise
    finally:
        seconds = time.perf_counter() - started
        outcome, txn = _outcome(error, result)
        transfer_observed(outcome=outcome, seconds=seconds)
        fields = {
            "event": "transfer",
            "kind": kind,
            "outcome": outcome,
            "duration_ms": round(seconds * 1000, 2),
            "request_id": current_request_id(),
        }
        if txn:
            fields["kind"] = txn.get("kind") or kind
            fields |= {
                "transaction_id": str(txn.get("_id", "")),
                "status": txn.get("status"),
                "amount_paise": int(txn.get("amount", 0)),
                "retry_count": txn.get("retry_count"),
                "from_account": str(txn.get("from_account_id", "")),
                "to_account": str(txn.get("to_account_id", "")),
            }
        if error is not None:
            fields["code"] = getattr(error, "code", type(error).__name__)
        level = logging.ERROR if outcome == "error" else logging.INFO
        transfer_logger.log(level, "transfer %s", outcome, extra=fields)
