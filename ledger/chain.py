"""The ledger's hash chains: each account's entries, linked by hashes, so an edit, a deletion or a
reordering made directly in the database is visible to `reconcile` (docs/reconcile.md).

Each entry carries `hash` = SHA-256 over its canonical content and `prev_hash`, the hash of the
account's previous entry ("" before the first). The account document keeps the newest hash as
`ledger_head`, written in the same money transaction as the entry (the account document is
written by every posting anyway, so no new contended document appears).

What it proves and what it does not: anyone who can rewrite a chain end to end, and its head,
can forge it (there is no secret); what it buys is that a single edited, deleted or reordered
row breaks every link after it and disagrees with the head, so tampering must rewrite the
account's whole tail and its account document together to pass. Pair it with the app's role
(insert and find only on the ledger: docs/deployment.md) and with backups reconciled on restore.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from aegis.clock import aware

GENESIS = ""  # prev_hash of an account's first entry
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _millis(moment: datetime) -> int:
    return (aware(moment) - _EPOCH) // _MS  # exact integer arithmetic: no float rounding


def entry_content(entry: dict) -> str:
    """The canonical text of one entry: every field that says what happened, fixed order."""
    return "|".join(
        (
            "v1",
            str(entry["account_id"]),
            str(int(entry["seq"])),
            str(entry["type"]),
            str(int(entry["amount"])),
            str(int(entry["balance_after"])),
            str(entry.get("currency", "")),
            str(entry["transaction_id"]),
            str(_millis(entry["created_at"])),
        )
    )


def entry_hash(entry: dict, prev_hash: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{entry_content(entry)}".encode()).hexdigest()


def chained(entry: dict, prev_hash: str | None) -> dict:
    """`entry` with its `prev_hash` and `hash` set (prev None: the account's first entry)."""
    prev = prev_hash or GENESIS
    return {**entry, "prev_hash": prev, "hash": entry_hash(entry, prev)}
