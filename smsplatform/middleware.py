import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from .outage import DATABASE_ERRORS, is_outage

log = logging.getLogger("smsplatform.outage")


class PublicSchemaMiddleware:
    """Every request starts and ends in the public schema.

    Customers call one host; API-key authentication switches to the caller's schema
    (tenants.authentication). Resetting on the way out keeps a pooled connection from carrying one
    tenant's schema into the next request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        connection.set_schema_to_public()
        try:
            return self.get_response(request)
        finally:
            connection.set_schema_to_public()


def service_unavailable() -> JsonResponse:
    """503 `service_unavailable` + Retry-After (docs/api.md): the caller retries the same request
    (with the same client reference, so nothing is sent twice)."""
    from .errors import error_body

    retry_after = settings.OUTAGE_RETRY_AFTER_SECONDS
    response = JsonResponse(
        error_body(
            "service_unavailable",
            f"The service is briefly unavailable; nothing was changed. Retry in {retry_after} s.",
        ),
        status=503,
    )
    response["Retry-After"] = str(retry_after)
    return response


class DatabaseOutageMiddleware:
    """Issue 21: a database outage answers a coded JSON 503, never Django's HTML error page.

    First in MIDDLEWARE: it connects before anything else needs the database (a request arriving
    during the outage), and `process_exception` catches an outage inside the view (the database
    went away mid-request; ATOMIC_REQUESTS has rolled the request back, so nothing it did stays).
    Probes (/healthz, /readyz) answer on their own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path not in ("/healthz", "/readyz"):
            try:
                connection.ensure_connection()
            except DATABASE_ERRORS as exc:
                log.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
                connection.close_if_unusable_or_obsolete()
                return service_unavailable()
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_outage(exception):
            return None
        log.warning("outage during %s %s: %s", request.method, request.path, exception)
        connection.close_if_unusable_or_obsolete()
        return service_unavailable()
