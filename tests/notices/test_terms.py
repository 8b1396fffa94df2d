"""R-TEN-7: agreement versions are published at least 7 days ahead with a notice to every tenant;
tenants accept or object through the API within 7 days; objections land in an operator queue;
acceptance is recorded per tenant."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants import notices, terms
from tenants.models import Notice, NoticeKind, OperationRecord, TermsAnswer, TermsResponse, TermsVersion

from .conftest import SYSTEM


def draft(version="2027.1"):
    return terms.create_terms_version(
        version=version, title="Service agreement", body_zh="新版服务协议。", body_en="New agreement.", actor=SYSTEM
    )


@pytest.fixture
def published(db):
    return terms.publish_terms(terms=draft(), effective_at=timezone.now() + timedelta(days=8), actor=SYSTEM)


def test_publishing_less_than_seven_days_ahead_is_refused_R_TEN_7(tenant_a):
    version = draft()
    with pytest.raises(notices.NoticePeriodTooShort):
        terms.publish_terms(terms=version, effective_at=timezone.now() + timedelta(days=6), actor=SYSTEM)
    version.refresh_from_db()
    assert version.published_at is None
    assert not Notice.objects.filter(kind=NoticeKind.TERMS_CHANGE).exists()


def test_publishing_tells_every_tenant_R_TEN_7_R_DLV_7(tenant_a, tenant_b, published):
    for tenant in (tenant_a, tenant_b):
        notice = Notice.objects.get(tenant=tenant, kind=NoticeKind.TERMS_CHANGE)
        assert notice.data["terms_id"] == published.pk
        assert notice.effective_at == published.effective_at
    assert published.objection_deadline == published.published_at + timedelta(days=7)
    assert OperationRecord.objects.filter(action="terms.publish", object_id=str(published.pk)).exists()


def test_tenant_accepts_through_the_api_and_it_is_recorded_R_TEN_7(tenant_a, client_a, published):
    response = client_a.post(f"/api/v1/terms/{published.pk}/accept", {}, format="json")
    assert response.status_code == 200
    row = TermsResponse.objects.get(tenant=tenant_a, terms=published)
    assert row.answer == TermsAnswer.ACCEPT
    assert row.answered_by_label == f"key:{client_a.key_id}"
    listed = client_a.get("/api/v1/terms").json()["results"]
    mine = next(t for t in listed if t["id"] == published.pk)
    assert mine["my_answer"]["answer"] == "accept"


def test_objection_within_seven_days_lands_in_the_queue_R_TEN_7(tenant_a, client_a, published):
    response = client_a.post(f"/api/v1/terms/{published.pk}/object", {"comment": "clause 5 is unfair"}, format="json")
    assert response.status_code == 200
    queue = TermsResponse.objects.filter(answer=TermsAnswer.OBJECT, resolved_at__isnull=True)
    assert queue.filter(tenant=tenant_a, terms=published).exists()
    resolved = terms.resolve_objection(response=queue.get(tenant=tenant_a), actor=SYSTEM, resolution="clause clarified")
    assert resolved.resolved_at is not None


def test_objection_needs_a_reason(client_a, published):
    response = client_a.post(f"/api/v1/terms/{published.pk}/object", {}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "objection_reason_required"
    assert not TermsResponse.objects.filter(terms=published).exists()


def test_objection_after_seven_days_is_refused_R_TEN_7(client_a, published):
    TermsVersion.objects.filter(pk=published.pk).update(objection_deadline=timezone.now() - timedelta(seconds=1))
    response = client_a.post(f"/api/v1/terms/{published.pk}/object", {"comment": "late"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "objection_period_over"
    assert not TermsResponse.objects.filter(terms=published).exists()


def test_an_objection_may_become_acceptance_but_not_the_reverse_R_TEN_7(tenant_a, client_a, published):
    client_a.post(f"/api/v1/terms/{published.pk}/object", {"comment": "clause 5"}, format="json")
    assert client_a.post(f"/api/v1/terms/{published.pk}/accept", {}, format="json").status_code == 200
    again = client_a.post(f"/api/v1/terms/{published.pk}/object", {"comment": "changed my mind"}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "terms_already_answered"
    assert TermsResponse.objects.get(tenant=tenant_a, terms=published).answer == TermsAnswer.ACCEPT


def test_unpublished_version_cannot_be_answered(client_a, db):
    version = draft("2099.9")
    response = client_a.post(f"/api/v1/terms/{version.pk}/accept", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "terms_not_found"
