"""The operators' side of issue 18 in the admin: broadcasts (R-DLV-7), legal holds and evidence
(R-AUD-5), the terms objection queue (R-TEN-7). Each write is permission-checked and recorded."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from tenants import legal_hold, terms
from tenants.models import (
    EvidencePackage,
    HoldScope,
    LegalHold,
    Notice,
    NoticeBroadcast,
    OperationRecord,
    TermsResponse,
)

from ..audit.conftest import grant, make_auditor, make_message
from .conftest import SYSTEM


def staff(name: str, *perms: str) -> User:
    user = User.objects.create_user(name, password="pw-x-1", is_staff=True)
    return grant(user, *perms)


BROADCAST = {
    "kind": "general",
    "subject_zh": "系统升级",
    "subject_en": "System upgrade",
    "body_zh": "平台将升级。",
    "body_en": "The platform will be upgraded.",
}


def test_broadcast_to_a_selection_sends_one_notice_each_and_is_recorded_R_DLV_7(client, tenant_a, tenant_b):
    user = staff("caster", "tenants.broadcast_notice", "tenants.add_noticebroadcast", "tenants.view_noticebroadcast")
    client.force_login(user)
    response = client.post("/admin/tenants/noticebroadcast/add/", {**BROADCAST, "tenants": [tenant_a.pk]})
    assert response.status_code == 302, response.content[:3000]
    broadcast = NoticeBroadcast.objects.get(subject_en="System upgrade")
    assert broadcast.notice_count == 1
    assert Notice.objects.filter(broadcast=broadcast, tenant=tenant_a).exists()
    assert not Notice.objects.filter(broadcast=broadcast, tenant=tenant_b).exists()
    assert OperationRecord.objects.filter(action="notice.broadcast", actor_label="user:caster").exists()


def test_broadcast_of_a_function_change_keeps_its_notice_period_R_DLV_7(client, tenant_a):
    user = staff("caster2", "tenants.broadcast_notice", "tenants.view_noticebroadcast")
    client.force_login(user)
    soon = timezone.localtime(timezone.now() + timedelta(days=3))
    response = client.post(
        "/admin/tenants/noticebroadcast/add/",
        {
            **BROADCAST,
            "kind": "function_change",
            "effective_at_0": soon.strftime("%Y-%m-%d"),
            "effective_at_1": soon.strftime("%H:%M:%S"),
            "all_tenants": "on",
        },
    )
    assert response.status_code == 200  # the form comes back with the error
    assert b"at the earliest" in response.content
    assert not NoticeBroadcast.objects.exists()


def test_broadcast_without_permission_is_refused(client, tenant_a):
    client.force_login(staff("viewer", "tenants.view_noticebroadcast"))
    response = client.post("/admin/tenants/noticebroadcast/add/", {**BROADCAST, "all_tenants": "on"})
    assert response.status_code == 403
    assert not Notice.objects.filter(subject_en="System upgrade").exists()


def test_placing_a_hold_needs_its_permission_R_AUD_5(client, tenant_a):
    body = {"tenant": tenant_a.pk, "basis": "authority_request", "reference": "PSB-1", "scope": "tenant", "reason": "x"}
    client.force_login(staff("nohold", "tenants.view_legalhold"))
    assert client.post("/admin/tenants/legalhold/add/", body).status_code == 403
    client.force_login(staff("holder", "tenants.place_legal_hold", "tenants.view_legalhold"))
    response = client.post("/admin/tenants/legalhold/add/", body)
    assert response.status_code == 302, response.content[:3000]
    hold = LegalHold.objects.get(reference="PSB-1")
    assert hold.placed_by_label == "user:holder"


def test_release_from_the_admin_needs_a_reason_and_is_recorded_R_AUD_5(client, tenant_a):
    hold = legal_hold.place_hold(
        tenant=tenant_a, basis="dispute", reference="D-1", reason="billing dispute", actor=SYSTEM
    )
    client.force_login(staff("releaser", "tenants.release_legal_hold", "tenants.view_legalhold"))
    response = client.post(f"/admin/tenants/legalhold/{hold.pk}/change/", {"release_reason_text": "dispute settled"})
    assert response.status_code == 302, response.content[:3000]
    hold.refresh_from_db()
    assert hold.released_by_label == "user:releaser"
    assert hold.release_reason == "dispute settled"


def test_evidence_compiled_and_handed_over_in_the_admin_R_AUD_5(client, tenant_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    message = make_message(tenant_a)
    hold = legal_hold.place_hold(
        tenant=tenant_a,
        basis="violation",
        reference="violation:9",
        reason="fraud",
        scope=HoldScope.MESSAGES,
        message_ids=[message.pk],
        actor=SYSTEM,
    )
    user = staff("officer", "tenants.compile_evidence", "tenants.hand_over_evidence", "tenants.view_evidencepackage")
    client.force_login(user)
    response = client.post(
        "/admin/tenants/evidencepackage/add/", {"hold": hold.pk, "request_reference": "REQ-7", "authority": "PSB"}
    )
    assert response.status_code == 302, response.content[:3000]
    package = EvidencePackage.objects.get(request_reference="REQ-7")
    assert package.message_count == 1
    assert len(package.sha256) == 64
    response = client.post(
        f"/admin/tenants/evidencepackage/{package.pk}/change/",
        {"handed_to_text": "Officer Wang, case 7", "method_text": "in person"},
    )
    assert response.status_code == 302, response.content[:3000]
    package.refresh_from_db()
    assert package.handed_over_to == "Officer Wang, case 7"
    download = client.get(f"/admin/tenants/evidencepackage/{package.pk}/download/")
    assert download.status_code == 200
    assert OperationRecord.objects.filter(action="evidence.download", object_id=str(package.pk)).exists()


def test_auditor_sees_holds_and_packages_but_cannot_download_R_AUD_5(client, tenant_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    hold = legal_hold.place_hold(tenant=tenant_a, basis="violation", reference="v:1", reason="x", actor=SYSTEM)
    package = legal_hold.compile_evidence_package(hold=hold, request_reference="R", authority="PSB", actor=SYSTEM)
    auditor = grant(make_auditor(), "tenants.view_legalhold", "tenants.view_evidencepackage")
    client.force_login(auditor)
    assert client.get("/admin/tenants/legalhold/").status_code == 200
    assert client.get(f"/admin/tenants/evidencepackage/{package.pk}/change/").status_code == 200
    assert client.get(f"/admin/tenants/evidencepackage/{package.pk}/download/").status_code == 403


@pytest.fixture
def objection(tenant_a):
    version = terms.create_terms_version(version="2027.2", title="t", body_zh="新", body_en="new", actor=SYSTEM)
    terms.publish_terms(terms=version, effective_at=timezone.now() + timedelta(days=8), actor=SYSTEM)
    return terms.respond_to_terms(tenant=tenant_a, terms_id=version.pk, answer="object", comment="no", actor=SYSTEM)


def test_operator_resolves_an_objection_from_the_queue_R_TEN_7(client, objection):
    client.force_login(staff("legal", "tenants.change_termsresponse", "tenants.view_termsresponse"))
    queue = client.get("/admin/tenants/termsresponse/?answer__exact=object&resolved_at__isempty=1")
    assert queue.status_code == 200
    response = client.post(
        f"/admin/tenants/termsresponse/{objection.pk}/change/", {"resolution_text": "explained clause 5"}
    )
    assert response.status_code == 302, response.content[:3000]
    assert TermsResponse.objects.get(pk=objection.pk).resolved_by_label == "user:legal"
