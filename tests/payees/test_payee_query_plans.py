"""Every read the payee pages and API send is bounded by the caller's own payees (at most
MAX_PAYEES) or is a point read, whatever the size of the bank's payee book: each recorded
command is replayed through the real server's `explain` (tests/query_plans.py).
"""

from __future__ import annotations

import pytest
from bson import ObjectId
from django.test import Client

from accounts.auth import token_issue
from aegis.clock import now_ms
from aegis.mongo import collection, get_db
from payees.models import MAX_PAYEES, Payee
from tests.factories import make_account, make_user
from tests.query_plans import examined, recorded, recording_queries

OTHER_OWNERS = 40  # with MAX_PAYEES each: a payee book far larger than any one customer's list
OWN_PAYEES = 60


@pytest.fixture
def book(settings):
    settings.AEGIS_RATELIMIT_GLOBAL = "100000/15m"
    settings.AEGIS_RATELIMIT_STRICT = "100000/15m"
    customer = make_account(user=make_user(name="Heavy Payer"))
    stranger = make_account(user=make_user(name="New Person"))
    now = now_ms()

    def payees_of(owner_id, count):
        return [
            {"owner_id": owner_id, "account_id": ObjectId(), "nickname": f"Payee {i:03}", "holder_name": "Some O.",
             "created_at": now, "updated_at": now}
            for i in range(count)
        ]  # fmt: skip

    for _ in range(OTHER_OWNERS):
        collection(Payee).insert_many(payees_of(ObjectId(), MAX_PAYEES))
    saved = make_account(user=make_user(name="Saved Person"))
    collection(Payee).insert_many(payees_of(customer.user.pk, OWN_PAYEES - 1))
    one = collection(Payee).insert_one(
        {"owner_id": customer.user.pk, "account_id": saved.pk, "nickname": "Saved", "holder_name": "Saved P.",
         "created_at": now, "updated_at": now}
    ).inserted_id  # fmt: skip
    assert collection(Payee).count_documents({}) == OTHER_OWNERS * MAX_PAYEES + OWN_PAYEES
    return customer, stranger, saved, one


def test_payee_reads_follow_the_callers_list_not_the_book(book):
    customer, stranger, saved, one = book
    page = Client()
    page.force_login(customer.user)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=customer.user)}")
    newcomer = make_account(user=make_user(name="Newcomer Person"))
    requests = [
        ("GET /payees", lambda: page.get("/payees"), 200),
        ("GET rename", lambda: page.get(f"/payees/{one}/rename"), 200),
        ("GET remove", lambda: page.get(f"/payees/{one}/remove"), 200),
        ("POST check", lambda: page.post("/payees/new", {"account_id": str(stranger.pk), "nickname": "New"}), 200),
        ("GET /api/payees", lambda: api.get("/api/payees"), 200),
        ("lookup saved", lambda: api.get(f"/api/payees/lookup?accountId={saved.pk}"), 200),
        ("lookup new", lambda: api.get(f"/api/payees/lookup?accountId={stranger.pk}"), 200),
        (
            "POST /api/payees",
            lambda: api.generic(
                "POST",
                "/api/payees",
                f'{{"accountId": "{newcomer.pk}", "nickname": "Newcomer"}}',
                content_type="application/json",
            ),
            201,
        ),  # fmt: skip
        ("PATCH", lambda: api.generic("PATCH", f"/api/payees/{one}", '{"nickname": "R"}', "application/json"), 200),
    ]
    with recording_queries() as record:
        for label, send, status in requests:
            with record(label):
                response = send()
            assert response.status_code == status, (label, response.status_code, response.content[:300])

    db = get_db()
    faults, payee_reads = [], 0
    for item in recorded():
        target = item.command.get(item.name)
        docs, stages = examined(db, item)
        if target == "payees":
            payee_reads += 1
            # The caller's own payees at most (the list, the MAX_PAYEES count), never the book; the
            # embedded planner trial-runs both owner-prefixed indexes, so a list can count twice.
            if docs > 2 * (OWN_PAYEES + 1) or "COLLSCAN" in stages:
                faults.append(f"{item.label}: {item.name} examined {docs} ({sorted(stages)}) {item.command}")
        elif target == "accounts" and (docs > 1 or "COLLSCAN" in stages):  # the look-up: a point read
            faults.append(f"{item.label}: {item.name} {target} examined {docs} ({sorted(stages)})")
        if "hint" in item.command:
            faults.append(f"{item.label}: hinted {item.command}")
    assert payee_reads >= len(requests)
    assert not faults, "\n".join(faults)
