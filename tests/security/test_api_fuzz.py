"""Hostile input: schemathesis generates requests from our own OpenAPI schema for every endpoint,
authenticated as tenant A. Whatever it sends: no server error, and every response matches the
schema (status codes we document, bodies of the documented shape)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance


@pytest.fixture
def api_schema(db):
    from django.core import signals
    from django.db import close_old_connections

    from smsplatform.wsgi import application

    # As Django's test client does: a WSGI request must not close the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_every_endpoint_survives_generated_input(api_schema, client_a):
    """Runs per operation (the schemathesis pytest plugin does not support our pytest yet)."""
    headers = {"X-Access-Key-Id": client_a.key_id, "X-Access-Key-Secret": client_a.secret}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert operations, "the schema lists no operations"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
        )
        def exercise(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        exercise()
