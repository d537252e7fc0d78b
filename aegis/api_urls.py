"""The JSON API under /api (DESIGN §5): the apps' ninja routers, each path guarded by its policy."""

from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.urls import path

from accounts import api as accounts_api
from accounts.policy import PUBLIC, guarded_urls, policy
from adminpanel import api as admin_api
from aegis.api import AegisAPI
from disputes import api as disputes_api
from payees import api as payees_api
from statements import api as statements_api
from transfers import api as transfers_api

app_name = "api"
ROUTERS = (
    accounts_api.router,
    transfers_api.router,
    statements_api.router,
    disputes_api.router,
    payees_api.router,
    admin_api.router,
    disputes_api.admin_router,
)

api = AegisAPI(
    title="Aegis API",
    version="1.0.0",
    description=(
        "Safe money movement: idempotent transfers, an append-only double-entry ledger, staff tools.\n\n"
        "Amounts are rupees in JSON (number or string, at most 2 decimals). Errors are "
        '`{"success": false, "message", "code"}` (with `field` naming the input at fault). Authenticate '
        "with `Authorization: Bearer <token>` from /api/auth/login or /api/auth/register (or the HttpOnly "
        "`token` cookie they set). Every route is rate limited per client (429 with Retry-After)."
    ),
    urls_namespace="api",
    openapi_url=None,  # served below, with our policy; the docs page uses our vendored Swagger UI
    docs_url=None,
)
for router in ROUTERS:
    api.add_router("", router)


def openapi_json(request: HttpRequest):
    return JsonResponse(api.get_openapi_schema(), json_dumps_params={"ensure_ascii": False})


openapi_json.aegis_api = True  # its errors (429, 405) answer as JSON; it reads no session
openapi_json = policy(PUBLIC, methods=["GET"])(openapi_json)


@policy(PUBLIC, methods=["GET"])
def api_docs(request: HttpRequest):
    return render(request, "api/docs.html")


urlpatterns = [
    *guarded_urls(api, ROUTERS),
    path("openapi.json", openapi_json, name="openapi"),
    path("docs", api_docs, name="docs"),
]
