from django.db import connection


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
