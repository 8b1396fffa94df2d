"""Customer docs reviewed against the code (issue 14 item 8): every path of the OpenAPI schema is in
docs/api.md, every error code a customer can meet is documented, the generated reference is
current, and the schema carries the one Error body and sendable examples."""

import re
from pathlib import Path

import pytest

from smsplatform.apidoc import openapi_schema, render_reference

DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")

# Raised only on operator paths (admin, management commands, jobs), never to an API key.
OPERATOR_ONLY = {
    "already_handed_over",
    "billing_error",
    "compliance_error",
    "delivery_error",
    "domain_error",
    "export_error",
    "invalid_rule",
    "invalid_state_transition",
    "legal_hold_error",
    "licence_registered",
    "licence_terminated",
    "notice_error",
    "notice_period_too_short",
    "retention_error",
    "retention_too_short",
    "staff_user_refused",
    "tenant_error",
    "terms_error",
    # operators' actions in the admin (service levels, incidents, registration duties, terms, bookings)
    "compensation_refused",
    "currency_mismatch",
    "incident_closed",
    "invalid_incident",
    "invalid_registration_update",
    "invalid_service_level_target",
    "term_error",
}


@pytest.fixture(scope="module")
def schema():
    return openapi_schema()


def test_every_path_of_the_schema_is_documented(schema):
    missing = [path for path in schema["paths"] if f"`{path}`" not in DOC and path not in DOC]
    assert not missing, f"add these to docs/api.md (manage.py api_reference): {missing}"


def test_every_method_of_every_path_has_a_reference_entry(schema):
    for path, item in schema["paths"].items():
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                assert f"### `{method.upper()} {path}`" in DOC, (method, path)


def test_the_generated_reference_is_current(schema):
    assert render_reference(schema) in DOC, "run `.venv/bin/python manage.py api_reference`"


def _domain_error_codes() -> set[str]:
    import importlib
    import pkgutil

    from smsplatform.errors import DomainError

    for package in ("tenants", "compliance", "billing", "delivery", "smsplatform"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if ".management" in info.name or ".migrations" in info.name:
                continue
            importlib.import_module(info.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    return {cls.code for cls in subclasses(DomainError)}


def test_every_error_code_a_customer_can_meet_is_documented(db):
    from delivery.alibaba.errors import BUSINESS_CODES as CODES

    codes = (_domain_error_codes() - OPERATOR_ONLY) | set(CODES)
    missing = sorted(code for code in codes if f"`{code}`" not in DOC)
    assert not missing, f"document these codes in docs/api.md (Errors): {missing}"


def test_every_operation_answers_errors_with_the_error_schema(schema):
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"code", "message", "details"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    content = response["content"]["application/json"]
                    assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, status)
                    assert set(content["example"]) == {"code", "message", "details"}


def test_send_examples_are_valid_requests(schema):
    """Swagger's examples can be sent as they are (with the demo's template code)."""
    from delivery.api import BatchSendIn, SingleSendIn

    for path, serializer in (("/api/v1/messages", SingleSendIn), ("/api/v1/batches", BatchSendIn)):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        (example,) = body["examples"].values()
        assert serializer(data=example["value"]).is_valid(), example
        assert not re.search(r'"string"', str(example["value"]))
