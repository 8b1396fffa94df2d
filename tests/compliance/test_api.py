"""Customer API of compliance: R-CMP-1, 2, 4, 5, 6, 7; tenant isolation; R-AUD-3; OpenAPI."""

import pytest
from django_tenants.utils import tenant_context

from compliance import services
from compliance.models import Complaint, OptOut, OptOutRemoval, Signature, Template
from tenants.models import OperationRecord

from .conftest import approved_signature, approved_template, proof

OPERATOR = services.Actor(kind="user", id="1", label="user:op")
CN1 = "+8613800138001"


def test_r_cmp_1_file_signature_with_proof_files(client_a, tenant_a):
    response = client_a.post(
        "/api/v1/signatures",
        {"text": "AcmeBrand", "purpose": "shop notices", "proofs": [proof("a.pdf"), proof("b.png")]},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert len(body["proofs"]) == 2
    assert OperationRecord.objects.filter(tenant=tenant_a, action="signature.file").exists()  # R-AUD-3


@pytest.mark.parametrize("text", ["A", "x" * 21, "【Acme】", "Acme(1)", "www.acme.com", "http://a.cn"])
def test_r_cmp_1_invalid_signature_text_is_refused(client_a, text):
    response = client_a.post("/api/v1/signatures", {"text": text, "proofs": [proof()]}, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_signature", "validation_error"}


def test_r_cmp_1_signature_without_proof_is_refused(client_a):
    response = client_a.post("/api/v1/signatures", {"text": "AcmeBrand"}, format="multipart")
    assert response.status_code == 400


def test_r_cmp_1_signature_approved_elsewhere_is_flagged_for_the_reviewer(client_a, tenant_b):
    approved_signature(tenant_b, "FamousBank")
    response = client_a.post("/api/v1/signatures", {"text": "FamousBank", "proofs": [proof()]}, format="multipart")
    assert response.status_code == 201
    signature = Signature.objects.get(pk=response.json()["id"])
    assert signature.impersonation_suspected
    assert tenant_b.name in signature.flag_detail


def test_r_cmp_1_withdraw_signature(client_a, tenant_a):
    signature = approved_signature(tenant_a)
    response = client_a.post(f"/api/v1/signatures/{signature.pk}/withdraw", {"reason": "rebrand"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"


def test_cross_tenant_signatures_are_404(client_b, tenant_a):
    signature = approved_signature(tenant_a)
    assert client_b.get(f"/api/v1/signatures/{signature.pk}").status_code == 404
    assert client_b.post(f"/api/v1/signatures/{signature.pk}/withdraw", {}, format="json").status_code == 404
    assert client_b.get("/api/v1/signatures").json()["results"] == []


def test_r_cmp_2_file_template_and_list_versions(client_a):
    response = client_a.post(
        "/api/v1/templates",
        {
            "name": "login",
            "type": "verification",
            "body": "Code ${code}, valid 5 min.",
            "variables": {"code": {"kind": "code"}},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    code = response.json()["code"]
    assert response.json()["latest_version"]["status"] == "pending"
    versions = client_a.get(f"/api/v1/templates/{code}/versions").json()
    assert [v["number"] for v in versions] == [1]


def test_r_cmp_2_editing_approved_template_files_a_new_version(client_a, tenant_a):
    template = approved_template(tenant_a)
    response = client_a.put(
        f"/api/v1/templates/{template.code}",
        {"body": "New ${code}", "variables": {"code": {"kind": "code"}}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["approved_version"] == 1
    assert response.json()["latest_version"]["number"] == 2
    assert response.json()["latest_version"]["status"] == "pending"


def test_r_cmp_2_undeclared_variable_is_refused(client_a):
    response = client_a.post(
        "/api/v1/templates", {"name": "x", "type": "notification", "body": "Hi ${name}"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_template"


def test_r_cmp_4_marketing_template_without_unsubscribe_is_rejected_at_filing(client_a):
    response = client_a.post(
        "/api/v1/templates", {"name": "promo", "type": "marketing", "body": "Big sale today!"}, format="json"
    )
    assert response.status_code == 201
    latest = response.json()["latest_version"]
    assert latest["status"] == "rejected"
    assert "unsubscribe" in latest["review_reason"]


def test_r_cmp_3_template_with_banned_content_is_rejected_at_filing(client_a):
    response = client_a.post(
        "/api/v1/templates", {"name": "x", "type": "notification", "body": "最新博 彩平台开业"}, format="json"
    )
    latest = response.json()["latest_version"]
    assert latest["status"] == "rejected"
    assert "gambling" in latest["review_reason"]


def test_cross_tenant_templates_are_404(client_b, tenant_a):
    template = approved_template(tenant_a)
    assert client_b.get(f"/api/v1/templates/{template.code}").status_code == 404
    assert (
        client_b.put(
            f"/api/v1/templates/{template.code}",
            {"body": "x ${code}", "variables": {"code": {"kind": "code"}}},
            format="json",
        ).status_code
        == 404
    )
    assert client_b.get(f"/api/v1/templates/{template.code}/versions").status_code == 404
    assert Template.objects.get(pk=template.pk).versions.count() == 1


def test_r_cmp_4_add_and_list_opt_outs(client_a, tenant_a):
    response = client_a.post("/api/v1/opt-outs", {"number": "13800138001"}, format="json")
    assert response.status_code == 201
    assert response.json()["number"] == CN1
    listed = client_a.get("/api/v1/opt-outs").json()["results"]
    assert [row["number"] for row in listed] == [CN1]


def test_r_cmp_4_customer_cannot_remove_an_opt_out(client_a, tenant_a):
    services.add_opt_out(tenant=tenant_a, number=CN1, actor=OPERATOR)
    response = client_a.delete(f"/api/v1/opt-outs/{CN1}")
    assert response.status_code == 403
    assert response.json()["code"] == "optout_removal_forbidden"
    with tenant_context(tenant_a):
        assert OptOut.objects.filter(number=CN1).exists()


def test_r_cmp_4_operator_removal_leaves_a_record(tenant_a):
    services.add_opt_out(tenant=tenant_a, number=CN1, actor=OPERATOR)
    services.remove_opt_out(tenant=tenant_a, number=CN1, actor=OPERATOR, reason="recipient asked by phone")
    with tenant_context(tenant_a):
        assert not OptOut.objects.filter(number=CN1).exists()
        assert OptOutRemoval.objects.get(number=CN1).removed_by == "user:op"


def test_cross_tenant_opt_outs_are_invisible(client_a, client_b, tenant_a):
    services.add_opt_out(tenant=tenant_a, number=CN1, actor=OPERATOR)
    assert client_b.get("/api/v1/opt-outs").json()["results"] == []
    assert client_b.delete(f"/api/v1/opt-outs/{CN1}").status_code == 403


def test_r_cmp_4_opt_out_csv_export_and_import(client_a, tenant_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(
        "o.csv", b"number\n13800138001\n+8613800138002\nnot-a-number\n", content_type="text/csv"
    )
    result = client_a.post("/api/v1/opt-outs/import", {"file": upload}, format="multipart").json()
    assert result == {"added": 2, "invalid": ["not-a-number"]}
    exported = client_a.get("/api/v1/opt-outs/export").content.decode()
    assert "+8613800138001" in exported
    assert "+8613800138002" in exported


def test_r_cmp_5_record_list_withdraw_consent(client_a):
    response = client_a.post("/api/v1/consents", {"number": CN1, "source": "web form #12"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["scope"] == "marketing"
    assert client_a.get("/api/v1/consents?active=true").json()["results"][0]["source"] == "web form #12"
    assert client_a.delete(f"/api/v1/consents/{CN1}").status_code == 204
    assert client_a.get("/api/v1/consents?active=true").json()["results"] == []


def test_r_cmp_6_tenant_sees_its_violations_and_actions(client_a, client_b, tenant_a):
    violation = services.record_violation(tenant=tenant_a, category="gambling", evidence="msg 123", actor=OPERATOR)
    services.warn_tenant(tenant=tenant_a, actor=OPERATOR, reason="first warning", violation=violation)
    rows = client_a.get("/api/v1/violations").json()["results"]
    assert rows[0]["category"] == "gambling"
    assert rows[0]["actions"][0]["kind"] == "warning"
    assert client_b.get(f"/api/v1/violations/{violation.pk}").status_code == 404


def test_r_cmp_7_suspended_tenant_can_still_answer_a_complaint(client_a, tenant_a):
    complaint = services.file_complaint(tenant=tenant_a, source="12321", number=CN1, text="spam", actor=OPERATOR)
    services.suspend_sending(tenant=tenant_a, actor=OPERATOR, reason="complaints")
    response = client_a.post(
        f"/api/v1/complaints/{complaint.pk}/answer", {"answer": "Removed from list."}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "answered"


def test_r_cmp_7_suspended_tenant_cannot_file_signatures(client_a, tenant_a):
    services.suspend_sending(tenant=tenant_a, actor=OPERATOR, reason="complaints")
    response = client_a.post("/api/v1/signatures", {"text": "AcmeBrand", "proofs": [proof()]}, format="multipart")
    assert response.status_code == 403


def test_cross_tenant_complaints_are_404(client_b, tenant_a):
    complaint = services.file_complaint(tenant=tenant_a, source="carrier", number=CN1, text="spam", actor=OPERATOR)
    assert client_b.get(f"/api/v1/complaints/{complaint.pk}").status_code == 404
    assert client_b.post(f"/api/v1/complaints/{complaint.pk}/answer", {"answer": "x"}, format="json").status_code == 404
    assert Complaint.objects.get(pk=complaint.pk).status == "open"


def test_compliance_endpoints_are_in_the_openapi_schema(client, db):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    for path in [
        "/api/v1/signatures",
        "/api/v1/signatures/{id}/withdraw",
        "/api/v1/templates",
        "/api/v1/templates/{code}/versions",
        "/api/v1/opt-outs",
        "/api/v1/opt-outs/{number}",
        "/api/v1/consents",
        "/api/v1/violations",
        "/api/v1/complaints/{id}/answer",
    ]:
        assert path in schema["paths"], path


def test_r_cmp_1_proof_must_be_a_document_or_image(client_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile("run.exe", b"MZ", content_type="application/octet-stream")
    response = client_a.post("/api/v1/signatures", {"text": "AcmeBrand", "proofs": [bad]}, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_proof"


def test_r_aud_3_customer_writes_are_recorded(client_a, tenant_a):
    client_a.post("/api/v1/opt-outs", {"number": CN1}, format="json")
    client_a.post("/api/v1/consents", {"number": CN1, "source": "shop counter"}, format="json")
    client_a.post(
        "/api/v1/templates",
        {"name": "x", "type": "verification", "body": "Code ${code}", "variables": {"code": {"kind": "code"}}},
        format="json",
    )
    complaint = services.file_complaint(tenant=tenant_a, source="12321", number=CN1, text="spam", actor=OPERATOR)
    client_a.post(f"/api/v1/complaints/{complaint.pk}/answer", {"answer": "removed"}, format="json")
    recorded = set(
        OperationRecord.objects.filter(tenant=tenant_a, actor_kind="api_key").values_list("action", flat=True)
    )
    assert {"opt_out.add", "consent.record", "template.file", "complaint.answer"} <= recorded


def test_r_cmp_1_impersonation_check_ignores_width_case_and_spacing(client_a, tenant_b):
    approved_signature(tenant_b, "BigBank")
    response = client_a.post("/api/v1/signatures", {"text": "ＢＩＧ ｂａｎｋ", "proofs": [proof()]}, format="multipart")
    assert response.status_code == 201
    assert Signature.objects.get(pk=response.json()["id"]).impersonation_suspected


def test_r_cmp_3_signature_with_banned_content_is_rejected_at_filing(client_a):
    response = client_a.post("/api/v1/signatures", {"text": "博彩之家", "proofs": [proof()]}, format="multipart")
    assert response.status_code == 201
    assert response.json()["status"] == "rejected"
    assert "gambling" in response.json()["review_reason"]
