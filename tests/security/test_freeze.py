"""A frozen account's owner cannot move money through a session or a token that was live when
the account was frozen: a freeze from the API or the staff console ends both at once (next
request: 401 / login page), and even where one survives (a freeze by another path, or a new
login), the transfer engine refuses the FROZEN sender. Balances never move."""

import re

import pytest
from django.test import Client

from accounts.models import Account, AccountStatus
from tests.accounts.conftest import ApiClient, api_as
from tests.factories import PASSWORD, make_user
from transfers.forms import new_idempotency_key


@pytest.fixture
def cast(generous_limits, funded_pair, bank):
    sender, receiver = funded_pair
    session = Client()
    assert session.post("/login", {"email": sender.user.email, "password": PASSWORD}).status_code == 302
    token = ApiClient().post("/api/auth/login", {"email": sender.user.email, "password": PASSWORD}).json()["token"]
    return sender, receiver, session, ApiClient(token=token)


def send_by_api(api: ApiClient, sender, receiver):
    body = {
        "fromAccount": str(sender.pk),
        "toAccount": str(receiver.pk),
        "amount": 10,
        "idempotencyKey": new_idempotency_key(),
    }
    return api.post("/api/transactions", body)


def send_by_page(session: Client, receiver):
    """Review, then send with the name ticked; a session that has ended is sent to log in at either step."""
    form = {"to_account": str(receiver.pk), "amount": "10", "idempotency_key": new_idempotency_key(), "note": ""}
    reviewed = session.post("/transfer", form | {"step": "review"})
    if reviewed.status_code != 200:
        return reviewed
    token = re.search(r'name="review_token" value="([^"]+)"', reviewed.content.decode()).group(1)
    return session.post("/transfer", form | {"step": "send", "review_token": token, "confirm_name": "on"})


def balances(*accounts) -> list[int]:
    return [Account.objects.get(pk=a.pk).balance for a in accounts]


def test_both_work_before_the_freeze(cast):
    sender, receiver, session, api = cast
    assert send_by_api(api, sender, receiver).json()["transaction"]["status"] == "COMPLETED"
    assert send_by_page(session, receiver).status_code == 302
    assert balances(sender, receiver) == [500_000 - 2_000, 2_000]


def test_freeze_by_api_ends_the_owners_session_and_token(cast):
    sender, receiver, session, api = cast
    admin = api_as(make_user(role="ADMIN"))
    assert admin.patch(f"/api/admin/freeze/{sender.pk}").status_code == 200
    before = balances(sender, receiver)
    refused = send_by_api(api, sender, receiver)
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"
    page = send_by_page(session, receiver)
    assert page.status_code == 302 and page["Location"].startswith("/login")
    assert balances(sender, receiver) == before


def test_freeze_from_the_staff_console_ends_them_too(cast):
    sender, receiver, session, api = cast
    staff = Client()
    staff.force_login(make_user(role="ADMIN", email="staff-freezer@example.com"))
    form = {"status": "FROZEN", "password": PASSWORD}
    assert staff.post(f"/staff/accounts/{sender.pk}/status", form).status_code == 302
    before = balances(sender, receiver)
    assert send_by_api(api, sender, receiver).status_code == 401
    assert send_by_page(session, receiver)["Location"].startswith("/login")
    assert balances(sender, receiver) == before
    # Unfreezing does not bring old credentials back.
    assert staff.post(f"/staff/accounts/{sender.pk}/status", {"status": "ACTIVE"}).status_code == 302
    assert send_by_api(api, sender, receiver).status_code == 401


def test_the_engine_refuses_a_frozen_sender_whatever_the_credential(cast, bank):
    sender, receiver, session, api = cast
    # Frozen by a path that does not sign the owner out (the service now always does: a direct
    # status write stands in for one): the live session and token still cannot pay.
    Account.objects.filter(pk=sender.pk).update(status=AccountStatus.FROZEN)
    before = balances(sender, receiver)
    refused = send_by_api(api, sender, receiver)
    assert refused.status_code == 422 and refused.json()["transaction"]["status"] == "FAILED"
    page = send_by_page(session, receiver)
    assert page.status_code in (200, 400) and b"not active" in page.content  # refused at the review: nothing sent
    assert balances(sender, receiver) == before
