"""The one tree of Aegis errors. Each has a stable machine `code`, an HTTP status and a message.

Views and the API map errors to responses in one place (`aegis.http.error_response`); services
raise these and never know about HTTP.
"""


class AegisError(Exception):
    code = "error"
    status = 400
    message = "Something went wrong."

    def __init__(self, message: str | None = None, **params):
        self.params = params
        self.message = message or self.message.format(**params)
        super().__init__(self.message)


class ValidationFailed(AegisError):
    code = "validation_error"
    status = 400
    message = "The request is not valid."

    def __init__(self, message: str | None = None, *, field: str | None = None, **params):
        self.field = field
        super().__init__(message, **params)


class NotAuthenticated(AegisError):
    code = "not_authenticated"
    status = 401
    message = "Authentication required."


class PermissionDenied(AegisError):
    code = "forbidden"
    status = 403
    message = "You are not allowed to do this."


class NotFound(AegisError):
    code = "not_found"
    status = 404
    message = "{thing} not found."


class Conflict(AegisError):
    code = "conflict"
    status = 409
    message = "The request conflicts with the current state."


class BusinessRuleViolation(AegisError):
    code = "business_rule"
    status = 422
    message = "The request breaks a business rule."


class ServiceUnavailable(AegisError):
    code = "unavailable"
    status = 503
    message = "The service is busy; retry the same request shortly."


class AppendOnlyViolation(AegisError):
    """Raised by append-only models; a programming error, never a user's."""

    code = "append_only"
    status = 500
    message = "{model} rows are append-only: they can never be updated or deleted."


class MethodNotAllowed(AegisError):
    code = "method_not_allowed"
    status = 405
    message = "This method is not allowed here."

    def __init__(self, message: str | None = None, *, allowed: tuple[str, ...] = (), **params):
        self.allowed = tuple(allowed)
        super().__init__(message, **params)


class RateLimited(AegisError):
    """Too many requests; `retry_after` (seconds) becomes the Retry-After header."""

    code = "rate_limited"
    status = 429
    message = "Too many requests. Try again later."

    def __init__(self, message: str | None = None, *, retry_after: int = 60, **params):
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, **params)
