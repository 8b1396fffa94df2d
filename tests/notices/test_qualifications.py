"""R-TEN-6: tenants file licences and permits with expiry dates; operators review them; expiry
produces reminders (R-DLV-7); account names are screened like signatures."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tenants import qualifications
from tenants.models import Notice, NoticeKind, OperationRecord, Qualification, QualificationStatus

from .conftest import SYSTEM


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def pdf(name="licence.pdf"):
    return SimpleUploadedFile(name, b"%PDF-1.4 licence", content_type="application/pdf")


def test_tenant_files_a_licence_through_the_api_R_TEN_6(tenant_a, client_a):
    expires = (timezone.localdate() + timedelta(days=365)).isoformat()
    response = client_a.post(
        "/api/v1/qualifications",
        {"kind": "business_licence", "title": "营业执照", "number": "91310000X", "expires_on": expires, "file": pdf()},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "pending"
    item = Qualification.objects.get(tenant=tenant_a)
    assert item.filed_by_label == f"key:{client_a.key_id}"
    listed = client_a.get("/api/v1/qualifications").json()["results"]
    assert [row["id"] for row in listed] == [item.pk]


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "business_licence", "title": "x", "file_name": "licence.exe"},
        {"kind": "business_licence", "title": "x", "expires_on": "2001-01-01"},
        {"kind": "nonsense", "title": "x"},
    ],
)
def test_bad_filing_is_refused_and_nothing_stored(tenant_a, client_a, fields):
    body = {"file": pdf(fields.pop("file_name", "licence.pdf")), **fields}
    response = client_a.post("/api/v1/qualifications", body, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_qualification", "validation_error"}
    assert not Qualification.objects.filter(tenant=tenant_a).exists()


def test_operator_review_is_recorded_R_TEN_6(tenant_a):
    item = qualifications.file_qualification(
        tenant=tenant_a, kind="industry_permit", title="ICP", file=pdf(), actor=SYSTEM
    )
    with pytest.raises(qualifications.QualificationError):
        qualifications.review_qualification(qualification=item, to_status="rejected", reason=" ", actor=SYSTEM)
    qualifications.review_qualification(qualification=item, to_status="approved", reason="", actor=SYSTEM)
    item.refresh_from_db()
    assert item.status == QualificationStatus.APPROVED
    assert OperationRecord.objects.filter(action="qualification.approved", object_id=str(item.pk)).exists()


def test_expiring_and_expired_documents_are_notified_once_R_TEN_6_R_DLV_7(tenant_a):
    soon = qualifications.file_qualification(
        tenant=tenant_a,
        kind="industry_permit",
        title="EDI permit",
        file=pdf(),
        actor=SYSTEM,
        expires_on=timezone.localdate() + timedelta(days=10),
    )
    later = qualifications.file_qualification(
        tenant=tenant_a,
        kind="industry_permit",
        title="SP permit",
        file=pdf(),
        actor=SYSTEM,
        expires_on=timezone.localdate() + timedelta(days=200),
    )
    for item in (soon, later):
        qualifications.review_qualification(qualification=item, to_status="approved", reason="", actor=SYSTEM)
    qualifications.remind_qualifications()
    qualifications.remind_qualifications()  # the next day's run: nothing new
    notices = Notice.objects.filter(tenant=tenant_a, kind=NoticeKind.QUALIFICATION)
    assert [n.data["qualification_id"] for n in notices] == [soon.pk]
    assert notices.get().data["state"] == "expiring"
    qualifications.remind_qualifications(now=timezone.now() + timedelta(days=11))
    assert {n.data["state"] for n in Notice.objects.filter(tenant=tenant_a, kind=NoticeKind.QUALIFICATION)} == {
        "expiring",
        "expired",
    }


def test_account_name_impersonating_an_approved_brand_is_refused_R_TEN_6(tenant_a, make_tenant):
    from compliance import services as compliance

    signature = compliance.file_signature(
        tenant=tenant_a, text="GreatBank", purpose="bank", proofs=[pdf()], actor=SYSTEM
    )
    compliance.approve_signature(signature=signature, actor=SYSTEM)
    with pytest.raises(qualifications.AccountNameRefused) as refused:
        make_tenant("GreatBank")
    assert refused.value.code == "account_name_refused"
    other = make_tenant("Honest Trading Co.")
    from tenants.registration import update_tenant_profile

    with pytest.raises(qualifications.AccountNameRefused):
        update_tenant_profile(tenant=other, changes={"name": "GreatBank"}, actor=SYSTEM)


def test_account_name_with_banned_content_is_refused_R_TEN_6(make_tenant):
    from compliance.models import BannedRule

    rule = BannedRule.objects.filter(enabled=True, kind="keyword", action="reject").first()
    if rule is None:
        pytest.skip("no seeded reject keyword")
    with pytest.raises(qualifications.AccountNameRefused):
        make_tenant(f"{rule.pattern}有限公司")
