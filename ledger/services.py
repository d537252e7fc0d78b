"""Writes to the append-only audit log. Ledger entries are only ever posted by the transfer."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from aegis.mongo import collection
from ledger.models import AuditLog


def audit_document(
    *, action: str, status: str, user_id: str = "", actor_id: str = "", transaction_id: str = "",
    details: dict | None = None, request_id: str = "", now: datetime | None = None,
) -> dict:
    return {
        "action": action,
        "status": status,
        "user_id": user_id,
        "actor_id": actor_id,
        "transaction_id": transaction_id,
        "details": details or {},
        "request_id": request_id,
        "created_at": now or timezone.now(),
    }


def audit_record(*, session=None, **fields) -> None:
    """Append one audit entry; inside the caller's transaction when a session is given."""
    collection(AuditLog).insert_one(audit_document(**fields), session=session)
