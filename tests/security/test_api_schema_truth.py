"""Issue 13, item 8: the schema tells the truth. The drifts the black-box run found, each checked
against the served schema with schemathesis' own response checks (real requests, tenant A)."""

import pytest
from schemathesis.openapi.checks import UndefinedStatusCode  # noqa: F401  (import check)
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from .test_api_fuzz import api_schema  # noqa: F401  (the fixture)


def operation(schema, method: str, path: str):
    for result in schema.get_all_operations():
        op = result.ok()
        if op.method.upper() == method and op.path.endswith(path):
            return op
    raise AssertionError(f"{method} {path} is not in the schema")


def call_and_check(schema, client, method, path, **case):
    op = operation(schema, method, path)
    headers = {"X-Access-Key-Id": client.key_id, "X-Access-Key-Secret": client.secret}
    made = op.Case(**case)
    response = made.call(headers=headers)
    made.validate_response(response, checks=[status_code_conformance, response_schema_conformance])
    return response


def test_template_versions_are_the_plain_list_the_schema_describes_R_CMP_2(request, client_a):
    # Filed through Django's test client first: it reconnects the signals the WSGI fixture unhooks.
    created = client_a.post(
        "/api/v1/templates",
        {"name": "otp", "type": "verification", "body": "Code ${code}.", "variables": {"code": {"kind": "code"}}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    api_schema = request.getfixturevalue("api_schema")  # noqa: F811
    response = call_and_check(
        api_schema, client_a, "GET", "/templates/{code}/versions", path_parameters={"code": created.json()["code"]}
    )
    assert [v["number"] for v in response.json()] == [1]


def test_frequency_limits_answer_in_the_documented_shape_R_CMP_8(api_schema, client_a):  # noqa: F811
    response = call_and_check(api_schema, client_a, "GET", "/frequency-limits")
    assert "results" in response.json()


def test_every_error_response_uses_the_error_component(api_schema):  # noqa: F811
    """One Error schema for all 4xx/5xx; every operation documents the errors any call can get."""
    raw = api_schema.raw_schema
    assert set(raw["components"]["schemas"]["Error"]["required"]) == {
        "code",
        "message",
        "details",
    }  # error_body always has details (may be null)
    for path, item in raw["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            assert {"400", "401", "403", "429"} <= set(op["responses"]), f"{method} {path}"
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"


@pytest.mark.parametrize(
    "query",
    ["limit=abc", "limit=0", "offset=-1", "offset=1&offset=2", "limit=", "offset=99999999999999999999"],
)
def test_unreadable_paging_parameters_are_a_400_not_a_silent_default(client_a, query):
    """DRF would fall back to its defaults; the API says what was wrong instead."""
    response = client_a.get(f"/api/v1/signatures?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert set(body["details"]) <= {"limit", "offset"}


def test_paging_still_works(client_a):
    response = client_a.get("/api/v1/signatures?limit=5&offset=0")
    assert response.status_code == 200
    assert "results" in response.json()
