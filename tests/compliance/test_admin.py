"""The operator admin end to end with Django's test client: review queues (R-CMP-1/2), rules and
block list (R-CMP-3/4), enforcement (R-CMP-6), complaints (R-CMP-7), role permissions."""

from datetime import timedelta

from django.utils import timezone

from compliance import services
from compliance.models import (
    BannedRule,
    Complaint,
    EnforcementAction,
    GlobalBlock,
    ReviewStatus,
    Signature,
    TemplateVersion,
)
from tenants.models import OperationRecord, TenantState

from .conftest import CUSTOMER, proof

OPERATOR = services.Actor(kind="user", id="1", label="user:op")


def _file(tenant, text):
    return services.file_signature(tenant=tenant, text=text, purpose="p", proofs=[proof()], actor=CUSTOMER)


def test_r_cmp_1_review_queue_shows_pending_oldest_first(client, reviewer_user, tenant_a):
    first, second = _file(tenant_a, "FirstBrand"), _file(tenant_a, "SecondBrand")
    done = _file(tenant_a, "DoneBrand")
    services.approve_signature(signature=done, actor=OPERATOR)
    client.force_login(reviewer_user)
    response = client.get("/admin/compliance/signature/")
    assert response.status_code == 302
    assert response.url.endswith("?status__exact=pending")
    page = client.get(response.url).content.decode()
    assert page.index(first.text) < page.index(second.text)
    assert "DoneBrand" not in page


def test_r_cmp_1_reviewer_approves_from_the_review_page(client, reviewer_user, tenant_a):
    signature = _file(tenant_a, "AcmeBrand")
    client.force_login(reviewer_user)
    page = client.get(f"/admin/compliance/signature/{signature.pk}/review/")
    assert page.status_code == 200
    assert "History of" in page.content.decode()
    assert "licence" in page.content.decode()  # the proof document is linked
    response = client.post(f"/admin/compliance/signature/{signature.pk}/review/", {"decision": "approve", "reason": ""})
    assert response.status_code == 302
    signature.refresh_from_db()
    assert signature.status == ReviewStatus.APPROVED
    assert signature.reviewed_by == "user:reviewer1"
    assert OperationRecord.objects.filter(action="signature.approve", actor_label="user:reviewer1").exists()


def test_r_cmp_1_reject_needs_a_reason(client, reviewer_user, tenant_a):
    signature = _file(tenant_a, "AcmeBrand")
    client.force_login(reviewer_user)
    response = client.post(f"/admin/compliance/signature/{signature.pk}/review/", {"decision": "reject", "reason": ""})
    assert response.status_code == 200
    assert "A reason is required" in response.content.decode()
    client.post(
        f"/admin/compliance/signature/{signature.pk}/review/",
        {"decision": "reject", "reason": "No trademark proof for this brand."},
    )
    signature.refresh_from_db()
    assert signature.status == ReviewStatus.REJECTED
    assert signature.review_reason == "No trademark proof for this brand."


def test_r_cmp_1_review_page_flags_possible_impersonation(client, reviewer_user, tenant_a, tenant_b):
    services.approve_signature(signature=_file(tenant_b, "BigBank"), actor=OPERATOR)
    suspicious = _file(tenant_a, "BigBank")
    client.force_login(reviewer_user)
    page = client.get(f"/admin/compliance/signature/{suspicious.pk}/review/").content.decode()
    assert "Possible impersonation" in page
    assert tenant_b.name in page


def test_r_cmp_1_proof_document_downloads_for_reviewers(client, reviewer_user, tenant_a):
    signature = _file(tenant_a, "AcmeBrand")
    client.force_login(reviewer_user)
    response = client.get(f"/admin/compliance/signature/{signature.pk}/proof/{signature.proofs.get().pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_r_cmp_1_bulk_approve(client, reviewer_user, tenant_a):
    signatures = [_file(tenant_a, f"Brand{n}") for n in range(3)]
    client.force_login(reviewer_user)
    response = client.post(
        "/admin/compliance/signature/?status__exact=pending",
        {"action": "approve_selected", "index": 0, "_selected_action": [s.pk for s in signatures[:2]]},
    )
    assert response.status_code == 302
    statuses = [Signature.objects.get(pk=s.pk).status for s in signatures]
    assert statuses == ["approved", "approved", "pending"]


def test_r_cmp_2_bulk_reject_asks_for_a_reason_then_rejects(client, reviewer_user, tenant_a):
    templates = [
        services.file_template(
            tenant=tenant_a,
            name=f"t{n}",
            message_type="verification",
            body=f"Code{n} ${{code}}",
            variables={"code": "code"},
            actor=CUSTOMER,
        )
        for n in range(2)
    ]
    ids = [t.versions.get().pk for t in templates]
    client.force_login(reviewer_user)
    url = "/admin/compliance/templateversion/?status__exact=pending"
    confirm = client.post(url, {"action": "reject_selected", "index": 0, "_selected_action": ids})
    assert confirm.status_code == 200
    assert "Reason" in confirm.content.decode()
    assert TemplateVersion.objects.filter(pk__in=ids, status="pending").count() == 2
    done = client.post(
        url,
        {
            "action": "reject_selected",
            "index": 0,
            "_selected_action": ids,
            "confirm": "yes",
            "reason": "Variables too loose.",
        },
    )
    assert done.status_code == 302
    assert list(TemplateVersion.objects.filter(pk__in=ids).values_list("review_reason", flat=True)) == [
        "Variables too loose.",
        "Variables too loose.",
    ]


def test_r_cmp_2_template_review_page_approves_a_version(client, reviewer_user, tenant_a):
    template = services.file_template(
        tenant=tenant_a,
        name="t",
        message_type="verification",
        body="Code ${code}",
        variables={"code": "code"},
        actor=CUSTOMER,
    )
    version = template.versions.get()
    client.force_login(reviewer_user)
    assert "Code ${code}" in client.get(f"/admin/compliance/templateversion/{version.pk}/review/").content.decode()
    client.post(f"/admin/compliance/templateversion/{version.pk}/review/", {"decision": "approve"})
    template.refresh_from_db()
    assert template.approved_version_id == version.pk


def test_user_without_reviewer_permission_is_refused(client, plain_staff, auditor_user, tenant_a):
    signature = _file(tenant_a, "AcmeBrand")
    for user in (plain_staff, auditor_user):
        client.force_login(user)
        response = client.post(f"/admin/compliance/signature/{signature.pk}/review/", {"decision": "approve"})
        assert response.status_code == 403
    client.force_login(auditor_user)
    # The auditor sees the queue but has no bulk review actions.
    response = client.post(
        "/admin/compliance/signature/?status__exact=pending",
        {"action": "approve_selected", "index": 0, "_selected_action": [signature.pk]},
    )
    signature.refresh_from_db()
    assert signature.status == ReviewStatus.PENDING


def test_r_cmp_3_operator_adds_a_rule_in_admin_and_the_scanner_uses_it(client, operator_user):
    client.force_login(operator_user)
    response = client.post(
        "/admin/compliance/bannedrule/add/",
        {
            "kind": "keyword",
            "pattern": "秘密折扣码",
            "category": "third_party_ads",
            "action": "reject",
            "enabled": "on",
            "note": "",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    result = services.scan_text("领取 秘 密 折 扣 码")
    assert result.reject is not None
    assert result.reject.rule.pattern == "秘密折扣码"
    assert OperationRecord.objects.filter(action="banned_rule.create", actor_label="user:operator1").exists()


def test_r_cmp_3_invalid_regex_is_refused_in_admin(client, operator_user):
    client.force_login(operator_user)
    response = client.post(
        "/admin/compliance/bannedrule/add/",
        {"kind": "regex", "pattern": "([unclosed", "category": "gambling", "action": "reject", "enabled": "on"},
    )
    assert response.status_code == 200
    assert not BannedRule.objects.filter(pattern="([unclosed").exists()


def test_r_cmp_3_rules_import_and_export(client, operator_user):
    client.force_login(operator_user)
    export = client.post(
        "/admin/compliance/bannedrule/export/",
        {
            "format": "0",
            "export_items": [],
            **{
                f"bannedruleresource_{field}": "on"
                for field in ("id", "kind", "pattern", "category", "action", "enabled", "note")
            },
        },
    )
    assert export.status_code == 200
    assert "博彩" in export.content.decode("utf-8")
    from django.core.files.uploadedfile import SimpleUploadedFile

    csv_bytes = "kind,pattern,category,action,enabled,note\nkeyword,导入测试词,gambling,reject,1,import\n".encode()
    upload = SimpleUploadedFile("rules.csv", csv_bytes, content_type="text/csv")
    confirm = client.post(
        "/admin/compliance/bannedrule/import/", {"import_file": upload, "format": "0", "resource": "0"}
    )
    assert confirm.status_code == 200
    page = confirm.content.decode()
    import re

    fields = dict(re.findall(r'name="(import_file_name|original_file_name|format|resource)"[^>]*value="([^"]*)"', page))
    done = client.post("/admin/compliance/bannedrule/process_import/", fields)
    assert done.status_code == 302, done.content[:2000]
    assert BannedRule.objects.filter(pattern="导入测试词").exists()
    assert services.scan_text("导 入 测 试 词").reject is not None


def test_r_cmp_4_operator_blocks_a_number_in_admin(client, operator_user):
    client.force_login(operator_user)
    response = client.post(
        "/admin/compliance/globalblock/add/", {"number": "13800138009", "reason": "carrier list", "source": "carrier"}
    )
    assert response.status_code == 302
    assert GlobalBlock.objects.get(number="+8613800138009").created_by == "user:operator1"


def test_r_cmp_6_operator_takes_enforcement_actions_from_the_violation_page(client, operator_user, tenant_a):
    violation = services.record_violation(tenant=tenant_a, category="gambling", evidence="msg 1", actor=OPERATOR)
    client.force_login(operator_user)
    url = f"/admin/compliance/violation/{violation.pk}/enforce/"
    assert client.post(url, {"kind": "warning", "reason": "first"}).status_code == 302
    assert client.post(url, {"kind": "volume_cap", "reason": "cut", "per_minute": 10}).status_code == 302
    assert client.post(url, {"kind": "suspend", "reason": "again"}).status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.state == TenantState.SUSPENDED
    kinds = list(EnforcementAction.objects.filter(tenant=tenant_a).values_list("kind", "operator"))
    assert kinds == [("suspend", "user:operator1"), ("volume_cap", "user:operator1"), ("warning", "user:operator1")]
    assert services.settings_for(tenant=tenant_a).per_minute_cap == 10


def test_r_cmp_6_reviewer_cannot_enforce(client, reviewer_user, tenant_a):
    violation = services.record_violation(tenant=tenant_a, category="gambling", evidence="msg 1", actor=OPERATOR)
    client.force_login(reviewer_user)
    assert (
        client.post(
            f"/admin/compliance/violation/{violation.pk}/enforce/", {"kind": "warning", "reason": "x"}
        ).status_code
        == 403
    )


def test_r_cmp_7_overdue_complaints_are_highlighted(client, operator_user, tenant_a):
    complaint = services.file_complaint(
        tenant=tenant_a, source="12321", number="+8613800138001", text="spam", actor=OPERATOR
    )
    Complaint.objects.filter(pk=complaint.pk).update(answer_due_at=timezone.now() - timedelta(hours=1))
    client.force_login(operator_user)
    page = client.get("/admin/compliance/complaint/").content.decode()
    assert "OVERDUE" in page


def test_operator_files_a_complaint_in_admin(client, operator_user, tenant_a):
    client.force_login(operator_user)
    response = client.post(
        "/admin/compliance/complaint/add/",
        {
            "tenant": tenant_a.pk,
            "source": "carrier",
            "number": "+8613800138001",
            "text": "unsolicited ad",
            "message_reference": "",
            "message_text": "",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    complaint = Complaint.objects.get(tenant=tenant_a)
    assert complaint.answer_due_at - complaint.created_at >= timedelta(hours=71, minutes=59)


def test_r_cmp_4_operator_looks_up_and_lifts_an_opt_out_with_a_record(client, operator_user, tenant_a):
    from django_tenants.utils import tenant_context

    from compliance.models import OptOut, OptOutRemoval

    services.add_opt_out(tenant=tenant_a, number="+8613800138001", actor=CUSTOMER)
    client.force_login(operator_user)
    changelist = client.get("/admin/compliance/globalblock/").content.decode()
    assert "Tenant opt-outs" in changelist
    assert "/admin/compliance/globalblock/import/" in changelist
    url = "/admin/compliance/globalblock/opt-outs/"
    page = client.post(url, {"tenant": tenant_a.pk, "number": "13800138001", "operation": "lookup"}).content.decode()
    assert "Opted out since" in page
    refused = client.post(url, {"tenant": tenant_a.pk, "number": "13800138001", "operation": "remove", "reason": ""})
    assert "A reason is required" in refused.content.decode()
    page = client.post(
        url,
        {"tenant": tenant_a.pk, "number": "13800138001", "operation": "remove", "reason": "recipient asked by phone"},
    ).content.decode()
    assert "Not opted out." in page
    with tenant_context(tenant_a):
        assert not OptOut.objects.exists()
        assert OptOutRemoval.objects.get().removed_by == "user:operator1"


def test_r_cmp_4_reviewer_cannot_touch_opt_outs(client, reviewer_user, tenant_a):
    client.force_login(reviewer_user)
    assert client.get("/admin/compliance/globalblock/opt-outs/").status_code == 403


def test_r_cmp_8_operator_sees_volume_counters(client, operator_user, tenant_a):
    from compliance.models import VolumeCounter

    VolumeCounter.objects.create(tenant=tenant_a, granularity="day", bucket_start=timezone.now(), count=1234)
    client.force_login(operator_user)
    assert "1234" in client.get("/admin/compliance/volumecounter/").content.decode()


def test_r_cmp_1_review_page_flags_a_brand_approved_after_filing(client, reviewer_user, tenant_a, tenant_b):
    early = _file(tenant_a, "LateBrand")
    services.approve_signature(signature=_file(tenant_b, "LateBrand"), actor=OPERATOR)
    client.force_login(reviewer_user)
    page = client.get(f"/admin/compliance/signature/{early.pk}/review/").content.decode()
    assert "Possible impersonation" in page


def test_every_compliance_admin_page_renders_for_a_superuser(client, superuser, tenant_a):
    signature = _file(tenant_a, "AcmeBrand")
    template = services.file_template(
        tenant=tenant_a,
        name="t",
        message_type="verification",
        body="Code ${code}",
        variables={"code": "code"},
        actor=CUSTOMER,
    )
    violation = services.record_violation(tenant=tenant_a, category="gambling", evidence="e", actor=OPERATOR)
    complaint = services.file_complaint(tenant=tenant_a, source="s", number="+8613800138001", text="t", actor=OPERATOR)
    services.order_rectification(
        tenant=tenant_a, deadline=timezone.now() - timedelta(days=1), actor=OPERATOR, reason="late"
    )
    client.force_login(superuser)
    pages = [
        "/admin/compliance/",
        "/admin/compliance/signature/?status__exact=pending",
        f"/admin/compliance/signature/{signature.pk}/change/",
        "/admin/compliance/templateversion/?status__exact=pending",
        f"/admin/compliance/templateversion/{template.versions.get().pk}/change/",
        "/admin/compliance/template/",
        f"/admin/compliance/template/{template.pk}/change/",
        "/admin/compliance/bannedrule/",
        "/admin/compliance/bannedrule/add/",
        "/admin/compliance/bannedrule/import/",
        "/admin/compliance/bannedrule/export/",
        "/admin/compliance/globalblock/",
        "/admin/compliance/globalblock/add/",
        "/admin/compliance/globalblock/opt-outs/",
        "/admin/compliance/violation/",
        "/admin/compliance/violation/add/",
        f"/admin/compliance/violation/{violation.pk}/change/",
        f"/admin/compliance/violation/{violation.pk}/enforce/",
        "/admin/compliance/enforcementaction/",
        "/admin/compliance/complaint/",
        "/admin/compliance/complaint/add/",
        f"/admin/compliance/complaint/{complaint.pk}/change/",
        "/admin/compliance/compliancesettings/",
        "/admin/compliance/compliancesettings/add/",
        "/admin/compliance/volumecounter/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    assert "PASSED" in client.get("/admin/compliance/compliancesettings/").content.decode()


def test_roles_grant_review_to_reviewers_enforcement_to_operators_and_view_only_to_auditors(db):
    from django.contrib.auth.models import Group

    def perms(role):
        return {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=role).permissions.all()
            if p.content_type.app_label == "compliance"
        }

    reviewer, operator, auditor = perms("reviewer"), perms("operator"), perms("auditor")
    assert {"compliance.review_signature", "compliance.review_template"} <= reviewer
    assert "compliance.enforce" not in reviewer
    assert {
        "compliance.enforce",
        "compliance.handle_complaint",
        "compliance.change_bannedrule",
        "compliance.add_globalblock",
        "compliance.manage_opt_outs",
    } <= operator
    assert "compliance.review_signature" not in operator
    assert auditor
    assert all(perm.split(".")[1].startswith("view_") for perm in auditor)
