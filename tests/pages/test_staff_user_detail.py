"""The staff user page (issue 19): profile, account, recent ledger, open disputes, the person's
audit trail and the statement form; each read bounded by its own index."""

from datetime import UTC, datetime, timedelta

from aegis.mongo import get_db
from disputes.services import dispute_open
from ledger.models import AuditAction, AuditLog
from tests.factories import make_account, make_user
from tests.pages.conftest import client_for
from tests.query_plans import examined, recorded, recording_queries
from transfers.services import system_fund, transfer_create


def _person_with_history(bank):
    person = make_account(user=make_user(email="meera@example.com", name="Meera Iyer"), balance=0)
    other = make_account(user=make_user(name="Arun Das"))
    system_fund(actor=bank.system_user, to_account_id=str(person.pk), amount_paise=90_000, idempotency_key="f")
    txn = transfer_create(
        actor=person.user,
        from_account_id=str(person.pk),
        to_account_id=str(other.pk),
        amount_paise=25_000,
        idempotency_key="t",
    ).transaction
    dispute_open(user=person.user, transaction_id=str(txn["_id"]), reason="WRONG_ACCOUNT", note="typo")
    return person


def test_user_page_has_profile_account_ledger_disputes_audit_and_statement(staff, bank):
    person = _person_with_history(bank)
    html = client_for(staff).get(f"/staff/users/{person.user.pk}").content.decode()
    for testid in ("user-facts", "account-facts", "user-entries", "user-disputes", "user-audit", "user-statement"):
        assert f'data-testid="{testid}"' in html, testid
    assert "Meera Iyer" in html and "₹650.00" in html  # the balance, Indian grouping
    assert "Sent to the wrong account" in html  # the open dispute
    assert "DISPUTE_OPENED" in html and "TRANSFER_SUCCESS" in html  # the person's audit trail
    assert f"/staff/accounts/{person.pk}/statement" in html
    assert 'class="table table-cards"' in html and "<th></th>" not in html


def test_user_audit_trail_is_a_bounded_window_of_the_persons_index(staff, bank):
    person = _person_with_history(bank)
    now = datetime.now(UTC)
    # 400 of this person's sign-ins, one every five minutes (older than the page's first window),
    # and 400 of someone else's: the page reads about one window of its own rows.
    mine = str(person.user.pk)
    AuditLog.objects.bulk_create(
        [
            AuditLog(
                action=AuditAction.LOGIN_SUCCESS,
                status="SUCCESS",
                user_id=user,
                created_at=now - timedelta(minutes=5 * i),
            )
            for i in range(1, 401)
            for user in (mine, "0" * 24)
        ]
    )
    client = client_for(staff)
    with recording_queries() as record, record("user"):
        assert client.get(f"/staff/users/{person.user.pk}").status_code == 200
    db = get_db()
    audit_reads = [r for r in recorded() if r.command.get("find") == "audit_logs"]
    assert audit_reads
    for item in audit_reads:
        docs, stages = examined(db, item)
        assert "COLLSCAN" not in stages, item.command
        assert docs <= 60, (docs, item.command.get("filter"))
