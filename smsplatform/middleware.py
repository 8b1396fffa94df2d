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


class ApiBodyLimitMiddleware:
    """Bodies larger than the API takes are refused before anything reads them, with the API's
    JSON error (413 payload_too_large), not Django's HTML 400. Multipart uploads (signature proofs)
    may be as large as the largest accepted file plus the form around it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            refused = _body_refused(request)
            if refused is not None:
                return refused
        return self.get_response(request)


def _body_refused(request):
    from django.conf import settings
    from django.http import JsonResponse

    from .errors import error_body

    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        return JsonResponse(error_body("malformed_request", "Content-Length must be a number of bytes."), status=400)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
    if request.META.get("CONTENT_TYPE", "").startswith("multipart/"):
        limit += getattr(settings, "COMPLIANCE_PROOF_MAX_BYTES", 0)
    if int(raw) > limit:
        return JsonResponse(
            error_body("payload_too_large", f"The body is larger than {limit} bytes.", {"max_bytes": limit}),
            status=413,
        )
    return None


class AdminNumberMaskingMiddleware:
    """R-AUD-2: recipient numbers on admin pages (lists, detail pages, the trail's before/after,
    callback bodies, opt-out and consent pages, CSV/JSON downloads) are masked for users without
    `delivery.view_full_number`. Applied to the rendered response, so custom admin views are
    covered too; fields that hold a number are read-only for those users (smsplatform.admin_site),
    so a masked value is never posted back."""

    MASKED_TYPES = ("text/html", "application/json", "text/csv", "text/plain", "text/tab-separated-values")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith("/admin/") or getattr(response, "streaming", False):
            return response
        content_type = response.get("Content-Type", "")
        if not content_type.startswith(self.MASKED_TYPES):
            return response
        from .masking import mask_text, may_see_full_numbers

        user = getattr(request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False) or may_see_full_numbers(user):
            return response
        charset = response.charset or "utf-8"
        text = response.content.decode(charset, errors="replace")
        masked = mask_text(text)
        if masked != text:
            response.content = masked.encode(charset)
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response


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
