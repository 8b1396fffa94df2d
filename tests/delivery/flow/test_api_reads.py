"""R-DLV-1/4/5 read paths and cancel; tenant isolation (another tenant's ids are 404)."""

from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import tenant_context

from delivery.models import InboundMessage, MessageStatus
from tenants.models import OperationRecord

from .conftest import add_message

S = MessageStatus


def test_tenant_b_gets_404_for_tenant_a_message(client_a, client_b, tenant_a):
    msg = add_message(tenant_a)
    assert client_a.get(f"/api/v1/messages/{msg.pk}").status_code == 200
    response = client_b.get(f"/api/v1/messages/{msg.pk}")
    assert response.status_code == 404
    assert response.json()["code"] == "message_not_found"
    assert client_b.post(f"/api/v1/messages/{msg.pk}/cancel").status_code == 404
    assert client_b.get(f"/api/v1/batches/{msg.request_id}").status_code == 404


def test_message_detail_shows_history(client_a, tenant_a):
    msg = add_message(tenant_a)
    body = client_a.get(f"/api/v1/messages/{msg.pk}").json()
    assert body["status"] == S.ACCEPTED
    assert body["history"][0]["to_status"] == S.ACCEPTED
    assert body["to"] == "+8613800138000"


def test_messages_filter_by_status_recipient_batch_and_dates(client_a, tenant_a):
    a = add_message(tenant_a, recipient="+8613800000001", status=S.DELIVERED, client_ref="ref-1")
    add_message(tenant_a, recipient="+8613800000002", status=S.FAILED)
    ids = lambda r: [m["id"] for m in r.json()["results"]]  # noqa: E731
    assert ids(client_a.get("/api/v1/messages", {"status": "delivered"})) == [a.pk]
    assert ids(client_a.get("/api/v1/messages", {"recipient": "13800000001"})) == [a.pk]
    assert ids(client_a.get("/api/v1/messages", {"batch": a.request_id})) == [a.pk]
    assert ids(client_a.get("/api/v1/messages", {"client_ref": "ref-1"})) == [a.pk]
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert ids(client_a.get("/api/v1/messages", {"created_after": future})) == []


def test_cancel_a_scheduled_message_is_recorded(client_a, tenant_a):
    msg = add_message(tenant_a, status=S.SCHEDULED, send_at=timezone.now() + timedelta(hours=1))
    response = client_a.post(f"/api/v1/messages/{msg.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == S.CANCELLED
    assert OperationRecord.objects.filter(action="delivery.cancel", tenant=tenant_a, object_id=str(msg.pk)).exists()


def test_a_submitted_message_cannot_be_cancelled(client_a, tenant_a):
    msg = add_message(tenant_a, status=S.SUBMITTED)
    response = client_a.post(f"/api/v1/messages/{msg.pk}/cancel")
    assert response.status_code == 409
    assert response.json()["code"] == "not_cancellable"


def test_batch_over_1000_recipients_is_refused(client_a):
    response = client_a.post(
        "/api/v1/batches",
        {
            "signature": "Demo",
            "template": "TPL_1",
            "recipients": ["+8613800138000"] * 1001,
        },
        format="json",
    )
    assert response.status_code == 400


def test_send_at_in_the_past_is_refused(client_a):
    response = client_a.post(
        "/api/v1/messages",
        {
            "to": "+8613800138000",
            "signature": "Demo",
            "template": "TPL_1",
            "send_at": (timezone.now() - timedelta(minutes=5)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_send_at"


def test_replies_are_listed_for_their_tenant_only(client_a, client_b, tenant_a):
    with tenant_context(tenant_a):
        InboundMessage.objects.create(
            source="+8613800138000", destination="106901", text="hi", received_at=timezone.now()
        )
    assert [r["text"] for r in client_a.get("/api/v1/replies").json()["results"]] == ["hi"]
    assert client_b.get("/api/v1/replies").json()["results"] == []
