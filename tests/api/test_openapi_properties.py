"""Property-based tests generated from /api/openapi.json (schemathesis), in-process on the WSGI app.

Schemathesis draws valid (positive) and malformed (negative) requests for every documented
operation; each is sent as a signed-in user, an admin, the system user and an anonymous
caller. Every response must be: never a 5xx, a documented status code, the documented
content type, headers and JSON schema; and (for the routes this document owns the validation
of) a malformed request must be refused with a 4xx. Valid requests are steered at real data
now and then (the caller's own account, a real recipient) so transfers really run.
"""

from __future__ import annotations

import json
import random

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from accounts.auth import token_issue
from accounts.models import Role
from accounts.services import system_bootstrap
from aegis.api_urls import api
from ledger.reconcile import ledger_reconcile
from tests.factories import make_account, make_user
from transfers.services import system_fund

EXAMPLES_PER_RUN = 110  # x 10 runs (RUNS) -> about 1,100 requests
BASE_CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
# Register/login validate with the identity developer's forms (e.g. names are stripped before
# their length is checked), so "malformed" per JSON Schema is not always malformed to them.
NEGATIVE_CHECKED_ELSEWHERE = {"/api/auth/register", "/api/auth/login"}

FAST = dict(
    AEGIS_RATELIMIT_GLOBAL="100000/15m",
    AEGIS_RATELIMIT_STRICT="100000/15m",
    AEGIS_RATELIMIT_LOGIN="100000/15m",
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # bcrypt would dominate the run
)


@pytest.fixture
def world(tmp_path):
    with override_settings(**FAST):
        bank = system_bootstrap(credentials_path=tmp_path / "credentials.json")
        user_account = make_account(user=make_user(name="Prop User"))
        other_account = make_account(user=make_user(name="Prop Other"))
        system_fund(
            actor=bank.system_user, to_account_id=str(user_account.pk), amount_paise=1_000_000, idempotency_key="seed"
        )
        admin = make_user(role=Role.ADMIN, name="Prop Admin")
        yield {
            "user": (user_account.user, user_account),
            "admin": (admin, None),
            "system": (bank.system_user, bank.system_account),
            "anonymous": (None, None),
            "other_account": other_account,
        }


def _steer(case, own, other, rnd: random.Random) -> None:
    """Point some valid requests at real data, so they get past 404 and move money."""
    if own is not None and "account_id" in (case.path_parameters or {}) and rnd.random() < 0.6:
        case.path_parameters["account_id"] = str(own.pk)
    if isinstance(case.body, dict):
        if own is not None and "fromAccount" in case.body and rnd.random() < 0.7:
            case.body["fromAccount"] = str(own.pk)
        if "toAccount" in case.body and rnd.random() < 0.7:
            case.body["toAccount"] = str(other.pk)
    if isinstance(case.query, dict) and "accountId" in case.query and own is not None and rnd.random() < 0.5:
        case.query["accountId"] = str(own.pk)


def _run(schema, mode: GenerationMode, user, own, other, counter: dict, run_seed: int) -> None:
    strategy = schema.as_strategy(generation_mode=mode)
    rnd = random.Random(run_seed)

    @seed(run_seed)
    @hsettings(
        max_examples=EXAMPLES_PER_RUN,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def requests(data):
        case = data.draw(strategy)
        if mode is GenerationMode.POSITIVE:
            _steer(case, own, other, rnd)
        headers = {"Authorization": f"Bearer {token_issue(user=user)}"} if user is not None else {}
        response = case.call(headers=headers)
        counter["requests"] += 1
        counter[response.status_code] = counter.get(response.status_code, 0) + 1
        checks = list(BASE_CHECKS)
        if mode is GenerationMode.NEGATIVE and case.operation.path not in NEGATIVE_CHECKED_ELSEWHERE:
            checks.append(openapi_checks.negative_data_rejection)
        case.validate_response(response, checks=checks, headers=headers)

    requests()


RUNS = [
    ("user", GenerationMode.POSITIVE),
    ("user", GenerationMode.NEGATIVE),
    ("admin", GenerationMode.POSITIVE),
    ("admin", GenerationMode.NEGATIVE),
    ("system", GenerationMode.POSITIVE),
    ("system", GenerationMode.NEGATIVE),
    ("anonymous", GenerationMode.POSITIVE),
    ("anonymous", GenerationMode.NEGATIVE),
    ("user", GenerationMode.POSITIVE),
    ("admin", GenerationMode.POSITIVE),
]


def test_generated_requests_never_fail_and_always_match_the_document(world):
    counter: dict = {"requests": 0}
    with override_settings(**FAST):
        schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
        for index, (role, mode) in enumerate(RUNS):
            user, own = world[role]
            _run(schema, mode, user, own, world["other_account"], counter, run_seed=20260415 + index)
    print("schemathesis:", counter)  # noqa: T201 (shown with -s: requests sent, by status)
    assert counter["requests"] >= 1000
    assert not any(isinstance(status, int) and status >= 500 for status in counter)
    assert sum(v for k, v in counter.items() if k in (200, 201)) >= 100  # real work was done, not only 4xx
    report = ledger_reconcile()
    assert report.ok, report.violations


def test_the_served_document_is_the_one_in_code(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(api.get_openapi_schema()))
    documented = {path for path in api.get_openapi_schema()["paths"]}
    assert "/api/transactions/{account_id}" in documented and "/api/admin/stats" in documented
