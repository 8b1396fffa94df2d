"""Hostile input on the audit API (stats, erasure requests): schemathesis cases from our own
OpenAPI schema, authenticated as tenant A — no server error, documented response shapes."""

from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from ..security.test_api_fuzz import api_schema  # noqa: F401  (the fixture)


def test_audit_endpoints_survive_generated_input(api_schema, client_a):  # noqa: F811
    headers = {"X-Access-Key-Id": client_a.key_id, "X-Access-Key-Secret": client_a.secret}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    mine = [op for op in operations if "/stats/" in op.path or "/erasure-requests" in op.path]
    assert len(mine) == 4
    for operation in mine:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
        )
        def exercise(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        exercise()
