"""Hostile input on every route: no 5xx, ever, and on /api every error is the JSON error shape.

The routes come from the URL configuration (the route × role matrix's walker), so a route added
later is covered too. Each route is called, for each method it declares, as each kind of caller,
with hostile values in every path parameter, in every query parameter any view reads, and in
every body field any form or API schema reads: huge and negative numbers, malformed and unknown
ids, operator objects, long and odd Unicode (RTL marks, NUL, lone surrogates), deep JSON.

Then one focused test per edge the walk cannot reach by values alone: an unknown /api path, a
wrong method, a body over the upload limit, a bad Host, deep JSON, a huge page number, the
dashboard's refresh for a user without an account, and hostile credentials.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from django.test import Client, override_settings

from accounts.auth import token_issue
from accounts.models import Role
from accounts.services import system_bootstrap
from aegis.http import MAX_JSON_DEPTH
from ledger.selectors import MAX_PAGE
from tests.factories import make_account, make_user
from tests.test_route_policy_matrix import PARAM, Route, collect_routes

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Strings any client can put in a URL, a query string or a form field.
HOSTILE_STRINGS = [
    "9" * 400,
    "-1",
    "0",
    "1e999",
    "ffffffffffffffffffffffff",  # the shape of an id, nobody's
    "zzzzzzzzzzzzzzzzzzzzzzzz",  # 24 characters, not hexadecimal
    '{"$gt": ""}',
    "\u202eevil\u200f\x00$where",  # right-to-left override and mark, NUL, an operator name
    "\ud800",  # a lone surrogate: percent-encodes to bytes that are not UTF-8
    "١٠",
    "𝔘" * 3000,  # astral characters: 4 bytes each in UTF-8, 2 UTF-16 units each in JSON
]
# What a JSON body can carry besides strings.
HOSTILE_JSON = HOSTILE_STRINGS + [{"$gt": ""}, {"$ne": None}, ["$in", []], 10**400, -(10**30), 1.5e308, True, None]
# Bodies that are hostile as a whole.
HOSTILE_RAW_JSON = [
    '{"a": ' + "[" * 5000 + "]" * 5000 + "}",
    "[" * 100_000,
    '{"a": "\\udfff\\ud800"}',
    '{"a": "\\u0000"}',
]
# Every query parameter and body field a view or an API schema reads.
QUERY_PARAMS = ["page", "limit", "status", "accountId", "account", "q", "key", "back", "since", "next"]
FORM_FIELDS = [
    "email", "password", "name", "current_password", "new_password", "new_password_confirm",
    "to_account", "amount", "note", "idempotency_key", "status", "next", "q", "page",
]  # fmt: skip
JSON_FIELDS = ["email", "password", "name", "fromAccount", "toAccount", "amount", "idempotencyKey", "note", "status"]
# Who gets every value on a route. Other callers the policy lets in try an HTMX request (the
# newcomer, whose pages take other paths, a plain one too); one caller it turns away tries one.
PRIMARY = {"public": "anonymous", "user": "user", "admin": "admin", "system": "system"}
ADMITTED = {
    "public": {"anonymous", "user", "newcomer", "admin", "system"},
    "user": {"user", "newcomer", "admin", "system"},
    "admin": {"admin"},
    "system": {"system"},
}


def encode(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def rotated(values: list, i: int, names: list[str]) -> list[tuple[str, object]]:
    """Each name gets a different value, shifted by request: a few requests try every pair."""
    return [(name, values[(i + j) % len(values)]) for j, name in enumerate(names)]


def deep_json(levels: int) -> str:
    return '{"amount": ' + "[" * levels + "]" * levels + "}"


@pytest.fixture
def callers(tmp_path):
    system = system_bootstrap(credentials_path=tmp_path / "credentials.json").system_user
    return {
        "anonymous": None,
        "user": make_account(user=make_user(name="Owner"), balance=500_000).user,
        "newcomer": make_user(name="No account yet"),
        "admin": make_user(role=Role.ADMIN, name="Admin"),
        "system": system,
    }


def client_for(route: Route, user) -> Client:
    if route.is_api:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token_issue(user=user)}"} if user else {}
        return Client(raise_request_exception=False, **headers)
    client = Client(raise_request_exception=False)
    if user:
        client.force_login(user)
    return client


def hostile_request(client: Client, route: Route, method: str, i: int):
    value = HOSTILE_STRINGS[i % len(HOSTILE_STRINGS)]
    query = "&".join(f"{name}={encode(v)}" for name, v in rotated(HOSTILE_STRINGS, i, QUERY_PARAMS))
    path = "/" + PARAM.sub(lambda match: encode(value), route.pattern) + "?" + query
    headers = {"HTTP_HX_REQUEST": "true"} if i % 2 else {}  # partials have their own code paths
    if method not in BODY_METHODS:
        return path, client.generic(method, path, **headers)
    if route.is_api:
        body = json.dumps(dict(rotated(HOSTILE_JSON, i, JSON_FIELDS)))
        return path, client.generic(method, path, body, content_type="application/json", **headers)
    body = "&".join(f"{name}={encode(v)}" for name, v in rotated(HOSTILE_STRINGS, i, FORM_FIELDS))
    return path, client.generic(method, path, body, content_type="application/x-www-form-urlencoded", **headers)


def problem(method: str, path: str, role: str, response) -> str | None:
    where = f"{method} {path[:100]} as {role}: {response.status_code}"
    if response.status_code >= 500:
        return f"{where} is a server error"
    if path.startswith("/api/") and response.status_code >= 400:
        if response.get("Content-Type", "").split(";")[0] != "application/json":
            return f"{where} is not JSON ({response.get('Content-Type')})"
        body = response.json()
        if body.get("success") is not False or not isinstance(body.get("message"), str) or not body.get("code"):
            return f"{where} lacks the error shape: {body}"
    return None


@override_settings(
    AEGIS_RATELIMIT_GLOBAL="1000000/15m",
    AEGIS_RATELIMIT_STRICT="1000000/15m",
    AEGIS_RATELIMIT_LOGIN="1000000/15m",
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # hashing is not under test here
)
def test_no_route_answers_5xx_to_hostile_input(callers):
    routes = [r for r in collect_routes() if not r.exempt and r.policy is not None]
    clients: dict[tuple[bool, str], Client] = {}

    def client(route: Route, role: str) -> Client:
        if route.pattern.endswith("logout"):  # it ends the session or token it is given
            return client_for(route, callers[role])
        key = (route.is_api, role)
        if key not in clients:
            clients[key] = client_for(route, callers[role])
        return clients[key]

    problems, sent = [], 0
    for n, route in enumerate(routes):
        access = route.policy.access
        turned_away = [role for role in callers if role not in ADMITTED[access]]
        for role in callers:
            if role == PRIMARY[access]:
                requests = range(len(HOSTILE_STRINGS))
            elif role == "newcomer" and role in ADMITTED[access]:
                requests = range(2)
            elif role in ADMITTED[access] or role == turned_away[0]:
                requests = range(1, 2)
            else:
                continue
            for method in route.policy.methods:
                for i in requests:
                    path, response = hostile_request(client(route, role), route, method, i)
                    sent += 1
                    if found := problem(method, path, role, response):
                        problems.append(found)
                if method == "GET" and role == PRIMARY[access]:
                    # One parameter at a time too (in a crowd, one refused value hides the others):
                    # the huge number, and one more value that changes from route to route.
                    path = "/" + PARAM.sub("ffffffffffffffffffffffff", route.pattern)
                    for j, name in enumerate(QUERY_PARAMS):
                        for value in {HOSTILE_STRINGS[0], HOSTILE_STRINGS[(n + j) % len(HOSTILE_STRINGS)]}:
                            response = client(route, role).get(f"{path}?{name}={encode(value)}")
                            sent += 1
                            if found := problem(method, f"{path}?{name}={value[:20]}", role, response):
                                problems.append(found)
                if route.is_api and method in BODY_METHODS and role == PRIMARY[access]:
                    path = "/" + PARAM.sub("ffffffffffffffffffffffff", route.pattern)
                    for body in HOSTILE_RAW_JSON:
                        response = client(route, role).generic(method, path, body, content_type="application/json")
                        sent += 1
                        if found := problem(method, path, role, response):
                            problems.append(f"{found} (body {body[:30]!r}...)")
    assert sent > 500
    assert problems == []


# --- focused: every /api answer is JSON ------------------------------------------------------
def assert_api_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False and isinstance(body["message"], str) and body["message"]
    if code:
        assert body["code"] == code
    return body


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_path_is_a_json_404_without_the_url_list(settings, debug):
    settings.DEBUG = debug
    for path in ("/api/no-such-route", "/api/", "/api", "/api/transactions/x/y/z"):
        response = Client(raise_request_exception=False).get(path)
        body = assert_api_error(response, 404, "not_found")
        assert "auth/login" not in response.content.decode() and "urlpatterns" not in body["message"]
    page = Client().get("/no-such-page")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_wrong_method_is_a_json_405_with_allow(db):
    for path, method in [("/api/transactions", "GET"), ("/api/accounts", "DELETE"), ("/api/docs", "POST")]:
        response = Client().generic(method, path)
        assert_api_error(response, 405, "method_not_allowed")
        assert response["Allow"]


@pytest.mark.parametrize("debug", [False, True])
def test_a_body_over_the_upload_limit_is_413(settings, debug):
    settings.DEBUG = debug
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    big = json.dumps({"note": "n" * 20_000})
    user = make_account().user
    api = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user)}")
    for path in ("/api/transactions", "/api/auth/login", "/api/no-such-route"):
        body = assert_api_error(api.post(path, big, content_type="application/json"), 413, "payload_too_large")
        assert "10000 bytes" in body["message"]
    page = Client(raise_request_exception=False)
    page.force_login(user)
    response = page.post("/transfer", {"note": "n" * 20_000}, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413 and b"larger than this site accepts" in response.content


def test_the_json_parser_refuses_an_oversized_body_by_itself(settings):
    # Should a route ever be reached past the edge guard, Django's own check still answers 413.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    from django.test import RequestFactory

    from aegis.http import PayloadTooLarge, parse_json_body

    request = RequestFactory().post("/api/transactions", "{}", content_type="application/json")
    request.META["CONTENT_LENGTH"] = "20000"
    with pytest.raises(PayloadTooLarge):
        parse_json_body(request)


def test_a_malformed_content_length_is_400(db):
    response = Client().generic("POST", "/api/auth/login", "{}", content_type="application/json", CONTENT_LENGTH="12x")
    assert_api_error(response, 400, "bad_request")


@pytest.mark.parametrize("debug", [False, True])
def test_a_bad_host_is_a_json_400_on_the_api(settings, debug):
    settings.DEBUG = debug
    client = Client(raise_request_exception=False, HTTP_HOST="evil.example")
    for path in ("/api/accounts", "/api/auth/login", "/api/no-such-route"):
        response = client.post(path, "{}", content_type="application/json")
        assert_api_error(response, 400, "bad_request")
        assert "ALLOWED_HOSTS" not in response.content.decode()
    page = client.get("/login")
    assert page.status_code == 400
    if not debug:
        assert b"ALLOWED_HOSTS" not in page.content


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 3000, 100_000])
def test_deeply_nested_json_is_400_malformed_json(db, levels):
    response = Client(raise_request_exception=False).post(
        "/api/auth/login", deep_json(levels), content_type="application/json"
    )
    body = assert_api_error(response, 400, "malformed_json")
    assert f"{MAX_JSON_DEPTH} levels" in body["message"]


def test_json_nested_within_the_limit_is_read(db):
    response = Client().post("/api/auth/login", deep_json(MAX_JSON_DEPTH - 1), content_type="application/json")
    assert_api_error(response, 400)
    assert response.json()["code"] != "malformed_json"


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_api_error_is_json_in_debug_too(settings, debug):
    settings.DEBUG = debug
    settings.ROOT_URLCONF = "tests.security.urls_boom"
    response = Client(raise_request_exception=False).get("/api/boom")
    body = assert_api_error(response, 500, "server_error")
    assert "Traceback" not in response.content.decode() and "hunter2" not in response.content.decode()
    assert body["requestId"] == response["X-Request-ID"]


@override_settings(AEGIS_RATELIMIT_GLOBAL="100000/15m", AEGIS_RATELIMIT_STRICT="100000/15m")
def test_hostile_credentials_are_a_json_401(db):
    deep_header = base64.urlsafe_b64encode(b"[" * 5000).rstrip(b"=").decode()
    tokens = [
        f"{deep_header}.{deep_header}.x",
        "a.b.c",
        "x" * 8000,
        "\u202e.\u202e.\u202e".encode().decode("latin-1"),
        base64.urlsafe_b64encode(b'{"alg":"none"}').decode() + ".e30.",
    ]
    for token in tokens:
        response = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/accounts")
        assert_api_error(response, 401)
        client = Client(raise_request_exception=False)
        client.cookies["sessionid"] = token
        assert client.get("/dashboard").status_code == 302


# --- focused: pages ------------------------------------------------------------------------
def shown_rows(response) -> int | None:
    found = {len(c["page"]["rows"]) for c in response.context if isinstance(c.get("page"), dict)}
    return found.pop() if found else None


@pytest.mark.parametrize(
    "page",
    ["9" * 400, "99999999999999999999", str(MAX_PAGE + 1), "-5", "١٠"],
    ids=["400-digits", "20-digits", "max+1", "negative", "arabic-digits"],
)
def test_a_huge_or_odd_page_number_is_clamped(fund, page):
    """Keyset lists walk `?page=N` at most keyset.MAX_WALKED_PAGE pages: a huge or odd number
    shows a page of the list (the first for an odd one; for a huge one the history shows its
    last page, the staff lists an empty page with a Newer link), never an error."""
    account = fund(make_account(), 10_000)
    admin = make_user(role=Role.ADMIN)
    for user, path in [(account.user, "/transactions"), (admin, "/staff/users"), (admin, "/staff/transactions")]:
        client = Client(raise_request_exception=False)
        client.force_login(user)
        response = client.get(f"{path}?page={page}")
        assert response.status_code == 200, (path, response.status_code)
        assert shown_rows(response) is not None, path
        if not page.isascii() or page.startswith("-"):
            assert shown_rows(response) >= 1, path  # the first page: the account, or the people
        assert client.get(f"{path}?page={page}", HTTP_HX_REQUEST="true").status_code == 200  # the list's partial


def test_the_last_page_still_lists_its_rows(fund):
    account = fund(make_account(), 10_000)
    admin = make_user(role=Role.ADMIN)
    client = Client()
    client.force_login(admin)
    response = client.get(f"/staff/transactions?account={account.pk}&page=1")
    assert response.status_code == 200 and len(response.context["page"]["rows"]) == 1


def test_the_dashboard_refresh_without_an_account_offers_to_open_one(db):
    client = Client(raise_request_exception=False)
    client.force_login(make_user())
    response = client.get("/dashboard", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Open your account" in html and 'action="/account/open"' in html and "<html" not in html


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb'),
        ("multipart/form-data", "no boundary at all"),
        ("application/x-www-form-urlencoded", "&".join(f"f{i}=1" for i in range(1500))),  # over the field cap
    ],
    ids=["unterminated-multipart", "multipart-without-boundary", "too-many-fields"],
)
def test_odd_form_bodies_are_never_a_5xx(db, content_type, body):
    client = Client(raise_request_exception=False)
    for path in ("/login", "/api/auth/login", "/api/docs"):
        response = client.generic("POST", path, body, content_type=content_type)
        assert response.status_code < 500, (path, response.status_code)
        if path.startswith("/api/"):
            assert 400 <= response.status_code < 500
            assert_api_error(response, response.status_code)


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "FOO", "PROPFIND"])
def test_unusual_methods_are_405(db, method):
    for path in ("/api/accounts", "/login"):
        response = Client(raise_request_exception=False).generic(method, path)
        assert response.status_code == 405
        if path.startswith("/api/"):
            assert_api_error(response, 405, "method_not_allowed")
