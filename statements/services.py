"""The one write statements make: the audit of a staff member reading someone's statement."""

from __future__ import annotations

from ledger.models import AuditAction
from ledger.services import audit_append
from statements.selectors import Period


def statement_download_record(*, staff, account, period: Period, fmt: str, request_id: str = "") -> None:
    """Who looked at whose statement, for which period, in which format. The audit entry is the
    whole change, so it is written on its own (a customer's own downloads are not recorded)."""
    audit_append(
        None,
        action=AuditAction.STATEMENT_DOWNLOADED,
        status="SUCCESS",
        user_id=str(account.user_id),
        actor_id=str(staff.pk),
        details={
            "accountId": str(account.pk),
            "from": period.first_day.isoformat(),
            "to": period.last_day.isoformat(),
            "format": fmt,
        },
        request_id=request_id,
    )
