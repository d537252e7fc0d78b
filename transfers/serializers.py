"""Transfers and ledger rows -> the API's JSON shapes (the seed's field names, rupee amounts).

The one place these shapes are built, for the JSON API and for anything else that answers in
JSON (HTMX partials, exports), with the schemas that document them and check every API answer.
Input is the raw MongoDB document the services and selectors return. The engine's claim
internals (`fingerprint`, `attempt_id`, the lease) are never shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from aegis.api import DateTime, NullableDateTime, Rupees
from aegis.money import rupees
from transfers.models import TransactionKind, TransactionStatus


class AdminTransaction(Schema):
    """A transfer as staff see it: never the idempotency key or any engine internals."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(alias="_id")
    fromAccount: str
    toAccount: str
    amount: Rupees
    currency: str
    kind: TransactionKind
    status: TransactionStatus
    retryCount: int = Field(ge=0, le=3)
    failureReason: str | None = Field(description="Why the last attempt failed; null if none.")
    failureCode: str | None = Field(description="Machine code of the last failure; null if none.")
    note: str
    createdAt: DateTime
    updatedAt: DateTime
    completedAt: NullableDateTime


class Transaction(AdminTransaction):
    """A transfer as its sender sees it (with the idempotency key they chose)."""

    idempotencyKey: str


class HistoryEntry(Schema):
    """One ledger entry of the account; its transaction has the key only on OUT rows (the sender's)."""

    id: str = Field(alias="_id")
    type: Literal["DEBIT", "CREDIT"]
    amount: Rupees
    direction: Literal["IN", "OUT"]
    balanceAfter: Rupees
    currency: str
    createdAt: DateTime
    transaction: Transaction | AdminTransaction | None


def iso(value: datetime | None) -> str | None:
    """A stored instant as ISO 8601 in UTC with its offset: `2026-04-15T19:00:00+00:00`.

    The client returns aware datetimes (DATABASES OPTIONS `tz_aware`); the API's times stay in
    UTC whatever zone a value arrives in, so every field has the same offset.
    """
    if value is None:
        return None
    return value.astimezone(UTC).isoformat()


def transaction_json(txn: dict, *, include_key: bool = True) -> dict:
    """A transfer as the API shows it: `{"_id", "fromAccount", "toAccount", "amount", "status", ...}`.

    `include_key=False` leaves out `idempotencyKey` (staff listings, and rows shown to anyone
    but the sender); `failureReason` is null when there is none, as in the seed.
    """
    body = {
        "_id": str(txn["_id"]),
        "fromAccount": str(txn["from_account_id"]),
        "toAccount": str(txn["to_account_id"]),
        "amount": rupees(txn["amount"]),
        "currency": txn.get("currency", "INR"),
        "kind": txn.get("kind", "TRANSFER"),
        "status": txn["status"],
        "retryCount": int(txn.get("retry_count", 0)),
        "failureReason": txn.get("failure_reason") or None,
        "failureCode": txn.get("failure_code") or None,
        "note": txn.get("note", ""),
        "createdAt": iso(txn.get("created_at")),
        "updatedAt": iso(txn.get("updated_at")),
        "completedAt": iso(txn.get("completed_at")),
    }
    if include_key:
        body["idempotencyKey"] = txn["idempotency_key"]
    return body


def transaction_admin_json(txn: dict) -> dict:
    """Staff view of a transfer: everything but the idempotency key (the seed hides it)."""
    return transaction_json(txn, include_key=False)


def ledger_entry_json(row: dict) -> dict:
    """One history row from `ledger.selectors.entries_for_account`.

    `{"_id", "type", "amount", "direction" IN|OUT, "balanceAfter", "currency", "createdAt",
    "transaction": {...}}`; the transaction carries its idempotency key only on OUT rows,
    where the caller is the sender who chose it.
    """
    txn = row.get("transaction") or {}
    return {
        "_id": str(row["_id"]),
        "type": row["type"],
        "amount": rupees(row["amount"]),
        "direction": row["direction"],
        "balanceAfter": rupees(row["balance_after"]),
        "currency": row.get("currency", "INR"),
        "createdAt": iso(row.get("created_at")),
        "transaction": transaction_json(txn, include_key=row["direction"] == "OUT") if txn else None,
    }
