"""HTTP edges: the ONE mapping of AegisError to responses, and the API's JSON body parser.

Services raise `aegis.errors.AegisError` subclasses and never know about HTTP. This module
turns them into:

- for the JSON API: `{"success": false, "message": ..., "code": ...}` with `err.status`
  (`error_response`), plus `Retry-After` for 429 and `Allow` for 405;
- for pages: a redirect to the login page (401) or the error page with `err.status`
  (`error_page`).

The API itself (django-ninja: operations, schemas, the error handlers) is `aegis.api`.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import RequestDataTooBig
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from aegis.errors import AegisError, MethodNotAllowed, NotAuthenticated, RateLimited, ValidationFailed

# No API body is more than a few levels deep; a bound far below the interpreter's recursion limit
# keeps a hostile body from reaching it in the parser or in anything that walks the result.
MAX_JSON_DEPTH = 64


class MalformedJSON(ValidationFailed):
    code = "malformed_json"
    message = "The request body is not valid JSON."


class PayloadTooLarge(AegisError):
    code = "payload_too_large"
    status = 413
    message = "The request body is larger than the limit of {limit} bytes."


class UnsupportedContentType(ValidationFailed):
    code = "unsupported_content_type"
    message = "Send the request body as application/json."


def _with_error_headers(response: HttpResponse, err: AegisError) -> HttpResponse:
    if isinstance(err, RateLimited):
        response["Retry-After"] = str(err.retry_after)
    if isinstance(err, MethodNotAllowed) and err.allowed:
        response["Allow"] = ", ".join(err.allowed)
    return response


def error_response(err: AegisError, *, extra: dict | None = None) -> JsonResponse:
    """The API's only error shape; `extra` adds context, e.g. the FAILED transfer as "transaction"."""
    body = {"success": False, "message": err.message, "code": err.code}
    if getattr(err, "field", None):
        body["field"] = err.field
    body.update(extra or {})
    return _with_error_headers(JsonResponse(body, status=err.status, encoder=DjangoJSONEncoder), err)


def error_page(request: HttpRequest, err: AegisError) -> HttpResponse:
    """The pages' only error mapping: 401 goes to the login page, the rest render error.html."""
    if isinstance(err, NotAuthenticated):
        return redirect_to_login(request.get_full_path())
    response = render(request, "error.html", {"error": err}, status=err.status)
    return _with_error_headers(response, err)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _too_deep(value, depth: int = 1) -> bool:
    if depth > MAX_JSON_DEPTH:
        return True
    if isinstance(value, dict):
        return any(_too_deep(item, depth + 1) for item in value.values())
    if isinstance(value, list):
        return any(_too_deep(item, depth + 1) for item in value)
    return False


def _nesting_refused() -> MalformedJSON:
    return MalformedJSON(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.")


def _request_body(request: HttpRequest) -> bytes:
    try:
        return request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE) from None


def parse_json_body(request: HttpRequest) -> dict:
    """The request's JSON object (ninja reads a body only for operations that take one).

    Numbers with a fraction become Decimal, so an amount is judged by the digits it was sent with.
    """
    _request_body(request)
    if request.content_type != "application/json":
        raise UnsupportedContentType()
    try:
        data = json.loads(request.body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        raise MalformedJSON() from None
    except RecursionError:  # thousands of levels: the parser gives up before any check could run
        raise _nesting_refused() from None
    if not isinstance(data, dict):
        raise MalformedJSON("The request body must be a JSON object.")
    if _too_deep(data):
        raise _nesting_refused()
    try:  # JSON may escape a lone surrogate ("\ud800"), which no database or page can store
        json.dumps(data, ensure_ascii=False, default=str).encode()
    except UnicodeEncodeError:
        raise MalformedJSON("The request body contains an escape that is not valid Unicode text.") from None
    return data
