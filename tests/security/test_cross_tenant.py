"""Tenant isolation on every endpoint with an object id in its path (R-TEN-1, docs/api.md "404"):
objects are created as tenant A, then every such operation in the OpenAPI schema is called as
tenant B with A's ids. Always 404 `not_found`-style, never A's data, and A's object unchanged.
A path parameter the test does not know fails the test, so new endpoints must be added here."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django_tenants.utils import tenant_context

from compliance import services as compliance
from compliance.models import Complaint, OptOut, Violation
from delivery.sendlog.retention import request_erasure

from ..conftest import SYSTEM
from ..delivery.flow.conftest import make_sendable


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.COMPLIANCE_SPIKE_MULTIPLE = 0


def _choice(model, field: str) -> str:
    return model._meta.get_field(field).choices[0][0]


@pytest.fixture
def a_objects(tenant_a, client_a):
    """One object of every kind the path parameters name, owned by tenant A."""
    template = make_sendable(tenant_a, signature="IsoShop")
    single = client_a.post(
        "/api/v1/messages",
        {"signature": "IsoShop", "template": template, "params": {"code": "2468"}, "to": "+8613911112222"},
        format="json",
    ).json()
    batch = client_a.post(
        "/api/v1/batches",
        {"signature": "IsoShop", "template": template, "params": {"code": "2468"}, "recipients": ["+8613911113333"]},
        format="json",
    ).json()
    signature = compliance.file_signature(
        tenant=tenant_a,
        text="IsoOther",
        purpose="iso",
        actor=SYSTEM,
        proofs=[SimpleUploadedFile("p.pdf", b"%PDF-1.4 iso", content_type="application/pdf")],
    )
    complaint = compliance.file_complaint(
        tenant=tenant_a, source="carrier", number="+8613911114444", text="secret complaint text A", actor=SYSTEM
    )
    violation = compliance.record_violation(
        tenant=tenant_a, category=_choice(Violation, "category"), evidence="secret evidence A", actor=SYSTEM
    )
    compliance.add_opt_out(tenant=tenant_a, number="+8613911115555", actor=SYSTEM)
    compliance.record_consent(tenant=tenant_a, number="+8613911116666", source="shop form A", actor=SYSTEM)
    erasure = request_erasure(tenant=tenant_a, number="+8613911117777", actor=SYSTEM)
    from tenants.notices import notify

    notice = notify(
        tenant=tenant_a, kind="general", subject_zh="通知", subject_en="Notice", body_zh="甲", body_en="A only"
    )
    connection.set_schema_to_public()
    return {
        "notice_id": notice.pk,
        "message_id": single["id"],
        "batch_id": batch["id"],
        "code": template,
        "id": {
            "signatures": signature.pk,
            "complaints": complaint.pk,
            "violations": violation.pk,
            "erasure-requests": erasure.pk,
        },
        "number": {"opt-outs": "+8613911115555", "consents": "+8613911116666"},
    }


def _operations(client) -> list[tuple[str, str]]:
    schema = client.get("/api/v1/schema/?format=json")
    paths = json.loads(schema.content)["paths"]
    return [
        (path, method)
        for path, ops in paths.items()
        if "{" in path
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _fill(path: str, objects: dict) -> str | None:
    resource = path.removeprefix("/api/v1/").split("/")[0]

    def value(match):
        name = match.group(1)
        found = objects[name] if not isinstance(objects.get(name), dict) else objects[name].get(resource)
        if found is None:
            raise AssertionError(f"no tenant-A object for {{{name}}} in {path}: add one to a_objects")
        return str(found)

    if "{terms_id}" in path:
        return None  # agreement versions are the platform's, the same for every tenant
    if "{month}" in path:
        return None  # a calendar month, not an object: B's own (empty) statement is the right answer
    if "{country}" in path:
        # R-CMP-9 platform rules, the same for every tenant; the caller's own registered senders
        # only (tests/compliance/test_country_rules.py checks B never sees A's).
        return None
    return re.sub(r"\{(\w+)\}", value, path)


def test_every_id_endpoint_answers_404_to_another_tenant(client_a, client_b, tenant_a, a_objects):
    operations = _operations(client_a)
    assert len(operations) >= 14, operations
    leaked, answered = [], []
    secrets_of_a = [
        "+8613911112222",
        "+8613911113333",
        "IsoOther",
        "secret complaint text A",
        "secret evidence A",
        "+8613911115555",
        "+8613911116666",
        "+8613911117777",
    ]
    for path, method in operations:
        url = _fill(path, a_objects)
        if url is None:
            continue
        body = {"answer": "b says", "body": "x ${code}", "name": "x", "variables": {}} if method != "get" else None
        response = getattr(client_b, method)(url, body, format="json") if body else client_b.get(url)
        answered.append((method.upper(), url, response.status_code))
        text = response.content.decode(errors="replace")
        if response.status_code != 404:
            # Only acceptable when the refusal does not depend on the object at all: the same
            # answer as for an id no tenant has (DELETE opt-out is refused to every customer, R-CMP-4).
            nowhere = re.sub(r"/(\d+|\+\d+|[A-Z0-9_-]{6,})(?=/|$)", "/999999999", url)
            again = getattr(client_b, method)(nowhere, body, format="json") if body else client_b.get(nowhere)
            if (again.status_code, again.content) != (response.status_code, response.content):
                leaked.append((method.upper(), url, response.status_code, text[:200]))
        if any(s in text for s in secrets_of_a):
            leaked.append((method.upper(), url, response.status_code, text[:200]))
    assert not leaked, leaked
    # … and B's writes changed nothing of A's
    with tenant_context(tenant_a):
        assert OptOut.objects.filter(number="+8613911115555").exists()
    connection.set_schema_to_public()
    assert Complaint.objects.get(pk=a_objects["id"]["complaints"]).answer in ("", None)
    assert client_a.get(f"/api/v1/messages/{a_objects['message_id']}").status_code == 200
