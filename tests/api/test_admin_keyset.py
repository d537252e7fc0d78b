"""GET /api/admin/transactions and /api/admin/users paged by keyset cursors (real server):
`nextCursor` walks every row once, `page=N` is the N-th cursor page up to the walkable depth,
and bad cursors or deep pages are a 400 JSON error."""

from datetime import timedelta

import pytest
from django.test import override_settings

from accounts.models import Role, User
from aegis.keyset import MAX_WALKED_PAGE
from tests.accounts.conftest import api_as
from tests.factories import make_user
from tests.pages.test_staff_keyset import NOW, bulk_bank, expected_ids


@pytest.fixture(autouse=True)
def generous_limits():
    with override_settings(
        AEGIS_RATELIMIT_GLOBAL="100000/15m",
        AEGIS_RATELIMIT_STRICT="100000/15m",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fixtures only; bcrypt is slow
    ):
        yield


@pytest.fixture
def admin():
    return api_as(make_user(role=Role.ADMIN))


def _filters(name, heavy) -> str:
    return {
        "none": "",
        "status": "status=FAILED&",
        "account": f"accountId={heavy.pk}&",
        "account+status": f"accountId={heavy.pk}&status=FAILED&",
    }[name]


def _walk(admin, path: str, key: str, limit: int) -> list[dict]:
    pages, cursor = [], None
    while True:
        body = admin.get(f"{path}limit={limit}" + (f"&cursor={cursor}" if cursor else "")).json()
        assert body["success"] is True and body["total"] is None and body["limit"] == limit
        assert body["hasNextPage"] is (body["nextCursor"] is not None)
        pages.append([row["_id"] for row in body[key]])
        cursor = body["nextCursor"]
        if cursor is None:
            return pages


@pytest.mark.parametrize("name", ["none", "status", "account", "account+status"])
def test_cursor_walk_and_page_n_agree_with_each_filter(admin, bank, name):
    built = bulk_bank(bank, transfers=400, failed=0.25)
    query = _filters(name, built["heavy"])
    account = built["heavy"].pk if "accountId" in query else None
    expected = expected_ids(built["docs"], status="FAILED" if "status" in query else None, account=account)
    pages = _walk(admin, f"/api/admin/transactions?{query}", "transactions", 10)
    assert [r for page in pages for r in page] == expected
    assert len(pages) >= 3 and all(len(p) == 10 for p in pages[:-1])
    for number in (1, 2, 3, min(len(pages), MAX_WALKED_PAGE)):
        body = admin.get(f"/api/admin/transactions?{query}limit=10&page={number}").json()
        assert body["page"] == number and [t["_id"] for t in body["transactions"]] == pages[number - 1]
        assert body["hasNextPage"] is (number < len(pages))
    past = admin.get(f"/api/admin/transactions?{query}limit=10&page={len(pages) + 1}").json()
    assert past["transactions"] == [] and past["nextCursor"] is None


def test_deep_pages_and_bad_cursors_are_400_json(admin, bank):
    built = bulk_bank(bank, transfers=60)
    heavy, other = built["heavy"], built["accounts"][1]
    deep = admin.get(f"/api/admin/transactions?page={MAX_WALKED_PAGE + 1}")
    assert deep.status_code == 400
    assert deep.json() == {"success": False, "code": "page_too_deep", "message": deep.json()["message"]}
    assert admin.get(f"/api/admin/users?page={MAX_WALKED_PAGE + 1}").json()["code"] == "page_too_deep"

    cursor = admin.get("/api/admin/transactions?limit=5").json()["nextCursor"]
    acct_cursor = admin.get(f"/api/admin/transactions?limit=5&accountId={heavy.pk}").json()["nextCursor"]
    users_cursor = admin.get("/api/admin/users?limit=1").json()["nextCursor"]
    assert cursor and acct_cursor and users_cursor
    refused = [
        "/api/admin/transactions?cursor=" + cursor[:-2] + ("ab" if not cursor.endswith("ab") else "cd"),
        f"/api/admin/transactions?status=FAILED&cursor={cursor}",  # another filter's cursor
        f"/api/admin/transactions?accountId={other.pk}&cursor={acct_cursor}",  # another account's
        f"/api/admin/transactions?cursor={acct_cursor}",
        f"/api/admin/transactions?cursor={users_cursor}",  # another listing's
        f"/api/admin/users?cursor={cursor}",
        "/api/admin/users?cursor=not-a-cursor",
    ]
    for path in refused:
        response = admin.get(path)
        assert response.status_code == 400, path
        assert response.json()["success"] is False and response.json()["code"] == "invalid_cursor", path
    too_long = admin.get("/api/admin/transactions?cursor=" + "x" * 600)
    assert too_long.status_code == 400 and too_long.json()["field"] == "cursor"
    # The same cursor twice reads the same page (nothing is consumed).
    again = [admin.get(f"/api/admin/transactions?limit=5&cursor={cursor}").json()["transactions"] for _ in range(2)]
    assert again[0] == again[1] and len(again[0]) == 5


def test_users_api_walks_every_person_once_newest_first(admin, bank):
    User.objects.bulk_create(
        [User(email=f"walk{i:02d}@example.com", date_joined=NOW - timedelta(hours=3 * i)) for i in range(37)]
    )
    expected = [
        str(pk)
        for pk in User.objects.filter(is_system=False).order_by("-date_joined", "-id").values_list("pk", flat=True)
    ]
    pages = _walk(admin, "/api/admin/users?", "users", 10)
    assert [r for page in pages for r in page] == expected and len(pages) == 4
    second = admin.get("/api/admin/users?limit=10&page=2").json()
    assert [u["_id"] for u in second["users"]] == pages[1] and second["nextCursor"]
