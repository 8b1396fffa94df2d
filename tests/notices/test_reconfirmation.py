"""R-CMP-8: a spike holds a tenant's messages; the tenant is told at once (R-DLV-7) and confirms
(releases) or cancels them through the API; the answer is recorded for operators."""

import pytest
from django_tenants.utils import tenant_context

from delivery.models import Message, MessageStatus
from tenants.models import Notice, NoticeKind, OperationRecord, Reconfirmation

from ..delivery.flow.conftest import add_message, make_sendable

NUMBERS = ["+8613811110001", "+8613811110002", "+8613811110003"]


@pytest.fixture
def spiked(tenant_a, client_a, settings, tmp_path):
    """Three messages sent in one batch by a tenant whose usual rate is one an hour: a spike."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.COMPLIANCE_SPIKE_MULTIPLE = 2
    settings.COMPLIANCE_SPIKE_MIN_HOURLY = 1
    template = make_sendable(tenant_a, signature="SpikeShop")
    response = client_a.post(
        "/api/v1/batches",
        {"signature": "SpikeShop", "template": template, "params": {"code": "1234"}, "recipients": NUMBERS},
        format="json",
    )
    assert response.status_code == 202, response.json()
    ids = [m["id"] for m in response.json()["messages"]]
    with tenant_context(tenant_a):
        assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {MessageStatus.HELD}
    return ids


def status_of(tenant, pk) -> str:
    with tenant_context(tenant):
        return Message.objects.get(pk=pk).status


def test_spike_hold_tells_the_tenant_at_once_R_CMP_8_R_DLV_7(tenant_a, spiked):
    notice = Notice.objects.get(tenant=tenant_a, kind=NoticeKind.VOLUME_HELD)
    assert notice.data["held"] == 3
    assert "/api/v1/held-volume/confirm" in notice.body_en
    assert {d.channel for d in notice.deliveries.all()} == {"inbox", "email", "webhook"}


def test_tenant_sees_its_held_volume_R_CMP_8(client_a, spiked):
    body = client_a.get("/api/v1/held-volume").json()
    assert body["held"] == 3
    assert sorted(m["id"] for m in body["messages"]) == sorted(spiked)


def test_confirm_releases_the_listed_messages_and_is_recorded_R_CMP_8(tenant_a, client_a, spiked):
    response = client_a.post("/api/v1/held-volume/confirm", {"message_ids": [spiked[0]]}, format="json")
    assert response.status_code == 200
    assert response.json()["message_count"] == 1
    assert status_of(tenant_a, spiked[0]) == MessageStatus.ACCEPTED
    assert status_of(tenant_a, spiked[1]) == MessageStatus.HELD
    answer = Reconfirmation.objects.get(tenant=tenant_a)
    assert answer.answer == "confirm"
    assert answer.message_ids == [spiked[0]]
    assert answer.notice.kind == NoticeKind.VOLUME_HELD
    assert OperationRecord.objects.filter(action="volume.confirm", tenant=tenant_a).exists()


def test_cancel_cancels_every_spike_held_message_R_CMP_8(tenant_a, client_a, spiked):
    response = client_a.post("/api/v1/held-volume/cancel", {"comment": "a loop in our system"}, format="json")
    assert response.status_code == 200
    assert response.json()["message_count"] == 3
    assert {status_of(tenant_a, pk) for pk in spiked} == {MessageStatus.CANCELLED}
    again = client_a.post("/api/v1/held-volume/confirm", {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "nothing_held"


def test_tenant_cannot_release_a_content_review_hold_R_CMP_3(tenant_a, client_a):
    review = add_message(tenant_a, status=MessageStatus.HELD, detail="Held for manual review: keyword (R-CMP-3).")
    response = client_a.post("/api/v1/held-volume/confirm", {"message_ids": [review.pk]}, format="json")
    assert response.status_code == 409
    assert status_of(tenant_a, review.pk) == MessageStatus.HELD


def test_bad_answer_body_is_refused(client_a):
    response = client_a.post("/api/v1/held-volume/confirm", {"message_ids": ["x"]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
