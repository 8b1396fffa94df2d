"""One error format for the whole API: {"code": "...", "message": "...", "details": ...}.

Domain errors are exception classes in each app deriving from DomainError; they are mapped to
responses here, once. The catalogue of codes is in docs/api.md.
"""

from django.db import DataError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response


class DomainError(Exception):
    """A refused business operation. Subclasses set `code` and `http_status`."""

    code = "domain_error"
    http_status = status.HTTP_400_BAD_REQUEST
    default_message = "The request was refused."

    def __init__(self, message: str | None = None, *, details=None, code: str | None = None):
        self.message = message or self.default_message
        self.details = details
        if code:
            self.code = code
        super().__init__(self.message)


class NotFound(DomainError):
    code = "not_found"
    http_status = status.HTTP_404_NOT_FOUND
    default_message = "Not found."


class Conflict(DomainError):
    code = "conflict"
    http_status = status.HTTP_409_CONFLICT
    default_message = "The request conflicts with the current state."


def error_body(code: str, message: str, details=None) -> dict:
    return {"code": code, "message": message, "details": details}


_DRF_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def api_exception_handler(exc, context):
    from rest_framework.views import exception_handler  # not at import: DRF settings import us

    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.http_status)
    if isinstance(exc, DataError):
        # Input that passed validation but that PostgreSQL cannot represent (a date in year 3
        # with a -17:22 offset, say): the client's fault, and the request's transaction is
        # rolled back so nothing it did stays.
        from rest_framework.views import set_rollback

        set_rollback()
        return Response(error_body("invalid_value", "A value is out of the range this field accepts."), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(code, "The request is invalid.", exc.detail)
        return response
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    # An APIException raised with an explicit code (e.g. tenant_suspended) keeps it.
    explicit = getattr(detail, "code", None)
    if explicit and explicit not in {exc.default_code, "invalid", "error"}:
        code = explicit
    response.data = error_body(code, str(detail))
    return response


def api_not_found(request, exception=None):
    """404 for unknown URLs: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def api_bad_request(request, exception=None):
    """400s raised by Django itself (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields):
    the API's JSON error format under /api/, Django's page elsewhere."""
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent

    if request.path.startswith("/api/"):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(error_body("payload_too_large", "The body is too large."), status=413)
        if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
            return JsonResponse(error_body("too_many_fields", "The form has too many fields or files."), status=400)
        return JsonResponse(error_body("malformed_request", "The request could not be read."), status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)
