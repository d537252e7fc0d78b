"""Every route × every kind of caller, checked against the route's declared policy.

The matrix is built from the URL configuration, so a route added later is checked too, and a
route that declares no `accounts.policy.policy` fails `test_every_route_declares_a_policy`.

Callers: anonymous, owner (ACTIVE account), other user (own account, tries the owner's),
frozen owner (FROZEN account, uses their own), admin, system user. Expectations:

- PUBLIC: nobody is turned away (no 401/403, no redirect to login);
- USER / ADMIN / SYSTEM: anonymous gets 401 (API) or a redirect to the login page (pages);
  ADMIN routes answer 403 to non-admins, SYSTEM routes 403 to everyone but the system user;
- a USER route about an account (a URL parameter named like `account`) answers 404 to every
  caller but the account's owner, revealing nothing; on the routes staff may read (OWNER_OR_STAFF)
  an admin is let in too, and nobody else;
- an undeclared method answers 405; nothing ever answers 5xx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from accounts.auth import token_issue
from accounts.models import AccountStatus, Role
from accounts.policy import ADMIN, PUBLIC, SYSTEM, USER, route_policy
from accounts.services import system_bootstrap
from tests.accounts.conftest import ApiClient
from tests.factories import make_account, make_user

# Django's admin site is not ours to decorate; its own gate (is_staff == role ADMIN) is checked
# in test_django_admin_is_staff_only below.
EXEMPT_APP_NAMES = {"admin"}
ROLES = ("anonymous", "owner", "other", "frozen_owner", "admin", "system")
PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass
class Route:
    pattern: str
    view: object
    exempt: bool
    is_regex: bool

    @property
    def policy(self):
        return route_policy(self.view)

    @property
    def is_api(self) -> bool:
        return bool(getattr(self.view, "aegis_api", False))

    @property
    def account_params(self) -> list[str]:
        return [m["name"] for m in PARAM.finditer(self.pattern) if "account" in m["name"].lower()]


def collect_routes(patterns=None, prefix: str = "", exempt: bool = False, is_regex: bool = False) -> list[Route]:
    patterns = get_resolver().url_patterns if patterns is None else patterns
    routes = []
    for entry in patterns:
        regex = is_regex or not isinstance(entry.pattern, RoutePattern)
        if isinstance(entry, URLResolver):
            routes += collect_routes(
                entry.url_patterns,
                prefix + str(entry.pattern),
                exempt or entry.app_name in EXEMPT_APP_NAMES,
                regex,
            )
        elif isinstance(entry, URLPattern):
            routes.append(Route(prefix + str(entry.pattern), entry.callback, exempt, regex))
    return routes


def undeclared(routes: list[Route]) -> list[str]:
    return [r.pattern for r in routes if not r.exempt and r.policy is None]


def test_every_route_declares_a_policy():
    routes = collect_routes()
    assert len([r for r in routes if not r.exempt]) >= 10
    assert undeclared(routes) == []
    # Concrete paths are built from path() syntax; a re_path() outside the admin cannot be.
    assert [r.pattern for r in routes if not r.exempt and r.is_regex] == []


# The contract's table (DESIGN §5): routes that exist must declare exactly these; anything under
# api/admin/ must be ADMIN (the seed's "admin middleware guards all /admin/* routes").
CONTRACT = {
    "api/auth/register": PUBLIC,
    "api/auth/login": PUBLIC,
    "api/auth/logout": USER,
    "api/accounts": USER,
    "api/accounts/balance/<str:account_id>": USER,
    "api/accounts/<str:account_id>/statement": USER,
    "api/transactions/<str:transaction_id>/receipt": USER,
    "api/transactions": USER,
    "api/transactions/system/initial-funds": SYSTEM,
    "api/disputes": USER,
    "api/disputes/<str:dispute_id>": USER,
    "api/admin/disputes": ADMIN,
    "api/admin/disputes/<str:dispute_id>": ADMIN,
    "api/admin/disputes/<str:dispute_id>/reject": ADMIN,
    "api/admin/reversals": ADMIN,
    "api/admin/reversals/<str:proposal_id>/approve": ADMIN,
    "api/admin/reversals/<str:proposal_id>/reject": ADMIN,
    "api/admin/reversals/<str:proposal_id>/retry": ADMIN,
    "api/admin/reversals/<str:proposal_id>/cancel": ADMIN,
    "login": PUBLIC,
    "register": PUBLIC,
    "logout": USER,
    "dashboard": USER,
}


# USER routes about an account that staff may read too (DESIGN §5: balance as-of, statements).
OWNER_OR_STAFF = {
    "api/accounts/balance/<str:account_id>",
    "api/accounts/<str:account_id>/statement",
}


def test_owner_or_staff_routes_exist_and_are_user_routes_about_an_account():
    routes = {r.pattern: r for r in collect_routes() if not r.exempt}
    assert OWNER_OR_STAFF <= set(routes)
    assert all(routes[p].policy.access == USER and routes[p].account_params for p in OWNER_OR_STAFF)


def test_declared_policies_match_the_contract():
    declared = {r.pattern: r.policy.access for r in collect_routes() if not r.exempt and r.policy}
    assert {p for p in CONTRACT if p.startswith("api/")} <= set(declared)  # none of the table is missing
    wrong = {p: a for p, a in declared.items() if p in CONTRACT and CONTRACT[p] != a}
    wrong |= {p: a for p, a in declared.items() if p.startswith("api/admin/") and a != ADMIN}
    assert wrong == {}
    # Staff API writes (freeze, reversal decisions) share the "admin" strict limit.
    routes = [r for r in collect_routes() if r.pattern.startswith("api/admin/")]
    assert [r.pattern for r in routes if r.policy.strict != "admin"] == []


def test_a_route_without_a_policy_is_reported():
    from django.urls import path

    from accounts.policy import policy

    def naked(request): ...

    @policy(USER)
    def declared(request): ...

    routes = collect_routes([path("naked", naked), path("declared", declared)])
    assert undeclared(routes) == ["naked"]


# --- the matrix -----------------------------------------------------------------------------
@pytest.fixture
def cast(tmp_path):
    owner = make_account(user=make_user(name="Owner"), balance=500_000)
    other = make_account(user=make_user(name="Other"), balance=100_000)
    frozen = make_account(user=make_user(name="Frozen"), status=AccountStatus.FROZEN, balance=100_000)
    admin = make_user(role=Role.ADMIN, name="Admin")
    system = system_bootstrap(credentials_path=tmp_path / "credentials.json").system_user
    users = {
        "anonymous": None,
        "owner": owner.user,
        "other": other.user,
        "frozen_owner": frozen.user,
        "admin": admin,
        "system": system,
    }
    # Whose account id each caller puts in an account URL parameter.
    subject = {role: owner for role in ROLES} | {"frozen_owner": frozen}
    return users, subject


def fill(route: Route, account_id: str) -> str:
    def value(match):
        if "account" in match["name"].lower():
            return account_id
        return "1" if match["converter"] == "int" else "x"

    return "/" + PARAM.sub(value, route.pattern)


def request(route: Route, user, method: str, path: str):
    # A fresh client (and token) per request: logout routes revoke what they are given.
    if user:
        user.refresh_from_db()  # a freeze earlier in the matrix signs the owner out (auth_epoch)
    if route.is_api:
        client = ApiClient(token=token_issue(user=user) if user else None)
        if method in {"POST", "PUT", "PATCH", "DELETE"}:
            return client.generic(method, path, "{}", content_type="application/json")
        return client.generic(method, path)
    client = Client()
    if user:
        client.force_login(user)
    return client.generic(method, path, "", content_type="application/x-www-form-urlencoded")


def denial(route: Route, role: str) -> int | None:
    access = route.policy.access
    if access == PUBLIC:
        return None
    if role == "anonymous":
        return 401
    if access == ADMIN and role != "admin":
        return 403
    if access == SYSTEM and role != "system":
        return 403
    return None


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/login")


@override_settings(AEGIS_RATELIMIT_GLOBAL="100000/15m", AEGIS_RATELIMIT_STRICT="100000/15m")
def test_route_role_matrix(cast):
    users, subject = cast
    routes = [r for r in collect_routes() if not r.exempt and r.policy is not None]
    problems = []
    checked = 0
    for route in routes:
        declared = route.policy
        for role in ROLES:
            path = fill(route, str(subject[role].pk))
            for method in declared.methods:
                response = request(route, users[role], method, path)
                checked += 1
                where = f"{method} {path} as {role} ({declared.access}): {response.status_code}"
                expected = denial(route, role)
                if response.status_code >= 500:
                    problems.append(f"{where} is a server error")
                elif expected == 401 and route.is_api:
                    if response.status_code != 401 or response.json().get("success") is not False:
                        problems.append(f"{where}, expected 401 JSON")
                elif expected == 401:
                    if not is_login_redirect(response):
                        problems.append(f"{where}, expected a redirect to the login page")
                elif expected == 403:
                    if response.status_code != 403:
                        problems.append(f"{where}, expected 403")
                elif response.status_code in (401, 403) or is_login_redirect(response):
                    problems.append(f"{where}, expected to be let in")
                elif declared.access == USER and route.account_params:
                    owns = role in ("owner", "frozen_owner") or (role == "admin" and route.pattern in OWNER_OR_STAFF)
                    if owns and response.status_code == 404:
                        problems.append(f"{where}, the owner was refused")
                    if not owns and response.status_code != 404:
                        problems.append(f"{where}, expected 404 for a non-owner")
            # A method the route does not declare is refused before anything else.
            undeclared_method = next(m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in declared.methods)
            response = request(route, users[role], undeclared_method, path)
            if response.status_code != 405:
                problems.append(f"{undeclared_method} {path} as {role}: {response.status_code}, expected 405")
    assert checked >= 6 * len(routes)
    assert problems == []


def test_django_admin_is_staff_only(cast):
    users, _ = cast
    response = Client().get("/django-admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/login?next=/django-admin/"  # our login, with its limits
    assert Client().post("/django-admin/login/", {"username": "a", "password": "b"}).status_code == 302
    for role in ("owner", "system"):
        client = Client()
        client.force_login(users[role])
        assert client.get("/django-admin/").status_code == 302
    client = Client()
    client.force_login(users["admin"])
    assert client.get("/django-admin/").status_code == 200
