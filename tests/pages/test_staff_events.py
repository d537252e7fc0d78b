"""The staff Events page: the outbox's health, its parked events, and requeueing them."""

from aegis.mongo import collection
from events.models import OutboxEvent
from ledger.models import AuditLog
from tests.factories import park_outbox_events
from tests.pages.conftest import client_for
from transfers.services import system_fund


def test_events_page_shows_parked_events_and_requeues_one(settings, staff, sender, bootstrap):
    for n in range(3):
        system_fund(
            actor=bootstrap.system_user, to_account_id=str(sender.pk), amount_paise=10_000, idempotency_key=f"e{n}"
        )
    parked = park_outbox_events(settings)
    assert len(parked) == 3  # one transaction.completed event per funding
    client = client_for(staff)

    page = client.get("/staff/events").content.decode()
    assert 'data-testid="parked-table"' in page
    assert "mailer: ConnectionError: mail relay refused the connection" in page
    assert f'data-testid="parked-count">{len(parked)}<' in page
    assert 'data-testid="dispatcher-down"' not in page  # this dispatcher just beat

    first = str(parked[0]["_id"])
    response = client.post(f"/staff/events/{first}/requeue", follow=True)
    assert "Requeued 1 event;" in response.content.decode()
    back = collection(OutboxEvent).find_one({"_id": parked[0]["_id"]})
    assert (back["status"], back["attempts"]) == ("PENDING", 0)
    audit = AuditLog.objects.get(action="OUTBOX_REQUEUED")
    assert audit.user_id == str(staff.pk) and audit.details == {"event": first, "requeued": 1}

    # Requeueing it again (it is no longer parked) changes nothing and says so.
    again = client.post(f"/staff/events/{first}/requeue", follow=True).content.decode()
    assert "Nothing to requeue" in again
    assert client.post("/staff/events/not-an-id/requeue", follow=True).status_code == 200

    response = client.post("/staff/events/requeue", follow=True).content.decode()
    assert "Requeued 2 events;" in response
    assert collection(OutboxEvent).count_documents({"status": "PARKED"}) == 0
    assert 'data-testid="no-parked"' in response


def test_events_page_warns_when_no_dispatcher_is_running(staff, db):
    page = client_for(staff).get("/staff/events").content.decode()
    assert 'data-testid="dispatcher-down"' in page and "dispatcher is not running" in page
    assert 'data-testid="no-parked"' in page


def test_requeue_is_post_only(staff, db):
    assert client_for(staff).get("/staff/events/requeue").status_code == 405


def test_requeue_needs_the_csrf_token(staff, db):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.post("/staff/events/requeue").status_code == 403
