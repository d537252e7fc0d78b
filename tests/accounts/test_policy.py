"""The policy decorator composes with api_view in either order and keeps its declaration."""

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from accounts.auth import token_issue
from aegis.errors import Conflict
from aegis.http import api_view, json_success
from aegis.policy import SYSTEM, USER, policy, route_policy
from tests.factories import make_user


def handler(request):
    if request.json.get("boom"):
        raise Conflict("Boom.")
    return json_success({"who": str(request.user.pk)})


OUTER = policy(USER, methods=["POST"])(api_view(handler))
INNER = api_view(policy(USER, methods=["POST"])(handler))


def call(view, *, user=None, body="{}"):
    request = RequestFactory().post("/x", body, content_type="application/json")
    request.user = AnonymousUser()
    if user:
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {token_issue(user=user)}"
    return view(request)


@pytest.mark.parametrize("view", [OUTER, INNER], ids=["policy-outside", "api_view-outside"])
def test_either_order_declares_enforces_and_maps_errors(db, view):
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
    view = policy(SYSTEM, methods=["POST"])(api_view(handler))
    assert call(view, user=make_user(role="ADMIN")).status_code == 403
    assert call(view, user=make_user(is_system=True)).status_code == 200


def test_unknown_access_level_is_refused():
    with pytest.raises(ValueError):
        policy("owner")
