"""Writes to the append-only ledger and audit log, always inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from bson import Int64
from django.utils import timezone

from accounts.models import Account
from aegis.mongo import collection
from aegis.tracing import current_trace_id
from ledger.chain import chained
from ledger.models import AuditLog, EntryType, LedgerEntry


def audit_append(
    session,
    *,
    action: str,
    status: str,
    user_id: str = "",
    actor_id: str = "",
    transaction_id: str = "",
    details: dict | None = None,
    request_id: str = "",
    now: datetime | None = None,
) -> None:
    """Append one audit entry in the transaction of the change it records (`session`). None only
    where the entry is the whole change (a sign-in, a refused sign-in, a sign-out)."""
    entry = {
        "action": action,
        "status": status,
        "user_id": user_id,
        "actor_id": actor_id,
        "transaction_id": transaction_id,
        "details": details or {},
        "request_id": request_id,
        # The trace of the request or job that made the change ("" with tracing off): an audit
        # row leads to the trace of everything that happened around it.
        "trace_id": current_trace_id(),
        "created_at": now or timezone.now(),
    }
    collection(AuditLog).insert_one(entry, session=session)


def _entry(txn: dict, account: dict, entry_type: str) -> dict:
    return {
        "account_id": account["_id"],
        "transaction_id": txn["_id"],
        "type": entry_type,
        "amount": Int64(txn["amount"]),
        "balance_after": Int64(account["balance"]),
        "seq": Int64(account["ledger_seq"]),
        "currency": txn["currency"],
        # The account's ledger_at after this posting: never earlier than its previous entry's.
        "created_at": account["ledger_at"],
    }


def ledger_post_pair(session, *, txn: dict, debited: dict, credited: dict) -> None:
    """Post a transfer's debit and credit entries in its money transaction (one insert, debit first),
    and move each account's chain head to its new entry.

    `debited` / `credited` are the account documents as the transaction left them (`_id`,
    `balance`, `ledger_seq`, `ledger_at`, and `ledger_head`, still the previous entry's hash):
    each entry carries the balance after it, the account's dense `seq`, its time, and its link
    in the account's hash chain (ledger.chain). The head moves in the same transaction, on the
    account document the posting already holds.
    """
    entries = [
        chained(_entry(txn, debited, EntryType.DEBIT), debited.get("ledger_head")),
        chained(_entry(txn, credited, EntryType.CREDIT), credited.get("ledger_head")),
    ]
    collection(LedgerEntry).insert_many(entries, session=session)
    accounts = collection(Account)
    for entry in entries:
        # Guarded by the seq this posting gave the account: nothing else can have moved it since.
        accounts.update_one(
            {"_id": entry["account_id"], "ledger_seq": entry["seq"]},
            {"$set": {"ledger_head": entry["hash"]}},
            session=session,
        )
