"""Errors that happen before, around or outside a view: the HTTP status handlers and the edge guard.

Views answer their own errors through `aegis.http`. What Django answers itself (an unknown path,
a bad Host header, a body over the upload limit, too many form fields, an uncaught exception)
goes through `handler400/403/404/500` in `aegis.urls`, which call `status_response` here: JSON
`{"success": false, "message", "code"}` under /api, the friendly templates elsewhere.

`EdgeMiddleware` (right after `SecurityHeadersMiddleware`, before anything that reads the Host
header or the body):

- refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE with 413 before anything reads it (Django
  would raise RequestDataTooBig, a SuspiciousOperation, from whichever middleware reads first,
  and answer 400), and a malformed Content-Length with 400;
- turns any non-JSON error response under /api into the JSON error shape with the same status.
  With DEBUG on, Django answers an unknown path, a bad Host or a bad body with its technical
  pages (the URL list, settings, a traceback) without calling the handlers; on /api they must
  not reach the client. Pages keep the debug pages in development.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

STATUS_ERRORS = {
    400: ("bad_request", "The request could not be understood."),
    401: ("not_authenticated", "Authentication required."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "There is no API route at this address."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", "The request body is larger than the limit of {limit} bytes."),
    429: ("rate_limited", "Too many requests. Try again later."),
    500: ("server_error", "Something went wrong on our side."),
}
# Headers an error response carries that a client needs to act on.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def is_api_path(request: HttpRequest) -> bool:
    path = request.path_info
    return path == "/api" or path.startswith("/api/")


def upload_limit() -> int | None:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def api_error(status: int, *, request: HttpRequest | None = None) -> JsonResponse:
    """The JSON error shape for a status Django (not a view) decided on."""
    if status in STATUS_ERRORS:
        code, message = STATUS_ERRORS[status]
    elif status >= 500:
        code, message = STATUS_ERRORS[500]
    else:
        code, message = STATUS_ERRORS[400]
    body = {"success": False, "message": message.format(limit=upload_limit()), "code": code}
    request_id = getattr(request, "request_id", "")
    if status >= 500 and request_id:
        body["requestId"] = request_id
    return JsonResponse(body, status=status)


def too_large_page(request: HttpRequest) -> HttpResponse:
    return render(request, "413.html", {"limit": upload_limit()}, status=413)


# --- handler400/403/404/500 (named in aegis.urls) ----------------------------------------------
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    status = 413 if isinstance(exception, RequestDataTooBig) else 400
    if is_api_path(request):
        return api_error(status, request=request)
    if status == 413:
        return too_large_page(request)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        return api_error(403, request=request)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        return api_error(404, request=request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_path(request):
        return api_error(500, request=request)
    return defaults.server_error(request)


# --- the edge guard -------------------------------------------------------------------------
def _content_length(request: HttpRequest) -> int | None:
    """The declared body length; None when it is not a plain non-negative integer."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return None
    return int(raw)


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip() == "application/json"


class EdgeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = is_api_path(request)
        length, limit = _content_length(request), upload_limit()
        if length is None:
            response = api_error(400, request=request) if api else defaults.bad_request(request, None)
        elif limit is not None and length > limit:
            response = api_error(413, request=request) if api else too_large_page(request)
        else:
            response = self.get_response(request)
        if api and response.status_code >= 400 and not _is_json(response):
            replacement = api_error(response.status_code, request=request)
            for header in KEPT_HEADERS:
                if header in response:
                    replacement[header] = response[header]
            response = replacement
        return response
