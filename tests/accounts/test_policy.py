"""The policy guard on a ninja path (aegis.api.guarded_urls): declared on the URL's view, enforced, errors mapped."""

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from ninja import Router, Schema

from accounts.auth import token_issue
from accounts.policy import SYSTEM, USER, guarded_urls, operation, policy, route_policy
from aegis.api import AegisAPI, ok
from aegis.errors import Conflict
from tests.factories import make_user

router = Router()


class Body(Schema):
    boom: bool = False


def handler(request, payload: Body):
    if payload.boom:
        raise Conflict("Boom.")
    return ok(who=str(request.user.pk))


operation(router, "POST", "/user", USER, url_name="user", response=dict)(handler)
operation(router, "POST", "/system", SYSTEM, url_name="system", response=dict)(lambda request: ok())
api = AegisAPI(urls_namespace="policy-test")
api.add_router("", router)
VIEWS = {pattern.name: pattern.callback for pattern in guarded_urls(api, [router])}


def call(view, *, user=None, body="{}"):
    request = RequestFactory().post("/x", body, content_type="application/json")
    request.user = AnonymousUser()
    if user:
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {token_issue(user=user)}"
    return view(request)


@pytest.mark.parametrize("view", [VIEWS["user"]], ids=["guarded-ninja-path"])
def test_the_guard_declares_enforces_and_maps_errors(db, view):
    assert route_policy(view).access == USER
    assert view.csrf_exempt is True
    assert call(view).status_code == 401
    user = make_user()
    response = call(view, user=user)
    assert response.status_code == 200
    assert json.loads(response.content) == {"success": True, "who": str(user.pk)}
    response = call(view, user=user, body='{"boom": true}')
    assert response.status_code == 409
    assert json.loads(response.content) == {"success": False, "message": "Boom.", "code": "conflict"}


def test_system_policy_admits_only_the_system_user(db):
    view = VIEWS["system"]
    assert call(view, user=make_user(role="ADMIN")).status_code == 403
    assert call(view, user=make_user(is_system=True)).status_code == 200


def test_unknown_access_level_is_refused():
    with pytest.raises(ValueError):
        policy("owner")
