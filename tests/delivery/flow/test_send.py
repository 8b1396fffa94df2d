"""R-DLV-1 send API: validate, gate (compliance), price, hold (billing) and persist in one
transaction; per-recipient refusals; idempotent client_ref; 402 stores nothing; R-AUD-3."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from delivery.models import Message, MessageStatus, OutboxEntry, SendRequest
from tenants.models import OperationRecord

from .conftest import PRICE, make_sendable

S = MessageStatus


@pytest.fixture
def sendable_a(tenant_a):
    return make_sendable(tenant_a)


def _holds(tenant):
    from billing.models import Hold

    return Hold.objects.filter(reference__startswith=f"{tenant.schema_name}:")


def single(template, **extra):
    return {"to": "13800138000", "signature": "DemoShop", "template": template, "params": {"code": "123456"}, **extra}


def test_single_send_is_accepted_held_and_put_in_the_outbox_R_DLV_1(client_a, tenant_a, sendable_a):
    response = client_a.post("/api/v1/messages", single(sendable_a), format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == S.ACCEPTED
    assert body["to"] == "+8613800138000"
    assert body["segments"] == 1
    assert body["amount"] == PRICE
    with tenant_context(tenant_a):
        msg = Message.objects.get(pk=body["id"])
        assert msg.content == "【DemoShop】Your code is 123456."
        assert msg.carrier == "china_mobile"
    hold = _holds(tenant_a).get()
    assert (hold.pk, hold.state, hold.amount) == (msg.hold_id, "held", PRICE)
    assert OutboxEntry.objects.filter(tenant=tenant_a, message_ids=[msg.pk]).exists()


def test_one_operation_record_per_request_R_AUD_3(client_a, tenant_a, sendable_a):
    before = OperationRecord.objects.filter(tenant=tenant_a, action="delivery.send_batch").count()
    recipients = [f"1380013{i:04d}" for i in range(5)]
    response = client_a.post("/api/v1/batches", {**single(sendable_a), "recipients": recipients}, format="json")
    assert response.status_code == 202
    assert OperationRecord.objects.filter(tenant=tenant_a, action="delivery.send_batch").count() == before + 1


def test_batch_rejections_carry_reasons_and_are_not_charged(client_a, tenant_a, sendable_a):
    from compliance import services as compliance

    from .conftest import _actor

    compliance.add_opt_out(tenant=tenant_a, number="+8613900000002", actor=_actor("customer"))
    response = client_a.post(
        "/api/v1/batches",
        {
            "signature": "DemoShop",
            "template": sendable_a,
            "params": {"code": "111111"},
            "recipients": ["13900000001", "13900000002", "12345", {"to": "13900000004", "params": {"code": "999999"}}],
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    reasons = {m["to"]: m["reason"] for m in body["messages"]}
    assert reasons["+8613900000002"] == "opted_out"
    assert reasons["12345"] == "invalid_number"
    assert _holds(tenant_a).count() == 2
    with tenant_context(tenant_a):
        assert Message.objects.get(recipient="+8613900000004").content.endswith("999999.")
        assert Message.objects.filter(request_id=body["id"], status=S.REJECTED, hold_id__isnull=True).count() == 2


def test_same_client_ref_returns_the_first_result(client_a, tenant_a, sendable_a):
    first = client_a.post("/api/v1/messages", single(sendable_a, client_ref="order-1"), format="json")
    again = client_a.post("/api/v1/messages", single(sendable_a, client_ref="order-1"), format="json")
    assert again.status_code == first.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replay"] == "true"
    assert _holds(tenant_a).count() == 1


def test_same_client_ref_with_another_body_is_a_conflict(client_a, sendable_a):
    client_a.post("/api/v1/messages", single(sendable_a, client_ref="order-2"), format="json")
    response = client_a.post(
        "/api/v1/messages", single(sendable_a, client_ref="order-2", to="13800000009"), format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "client_ref_conflict"


def test_insufficient_balance_is_402_and_stores_nothing_R_BIL_1(client_a, tenant_a):
    template = make_sendable(tenant_a, balance=0)
    response = client_a.post("/api/v1/messages", single(template, client_ref="poor-1"), format="json")
    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_balance"
    with tenant_context(tenant_a):
        assert not SendRequest.objects.exists()
        assert not Message.objects.exists()
    assert not OutboxEntry.objects.filter(tenant=tenant_a).exists()


def test_unapproved_template_refuses_the_whole_request(client_a, tenant_a, sendable_a):
    response = client_a.post("/api/v1/messages", single("TPL_NOPE"), format="json")
    assert response.status_code in (400, 403, 404, 422)
    with tenant_context(tenant_a):
        assert not Message.objects.exists()


def test_single_send_to_an_invalid_number_is_422_with_the_reason(client_a, sendable_a):
    response = client_a.post("/api/v1/messages", single(sendable_a, to="12345"), format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_number"


def test_scheduled_send_waits_and_cancel_releases_the_hold(client_a, tenant_a, sendable_a):
    send_at = (timezone.now() + timedelta(hours=3)).isoformat()
    body = client_a.post("/api/v1/messages", single(sendable_a, send_at=send_at), format="json").json()
    assert body["status"] == S.SCHEDULED
    entry = OutboxEntry.objects.get(tenant=tenant_a, message_ids=[body["id"]])
    assert entry.available_at > timezone.now() + timedelta(hours=2)
    response = client_a.post(f"/api/v1/messages/{body['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == S.CANCELLED
    assert _holds(tenant_a).get().state == "released"


def test_batch_accept_query_count_does_not_grow_with_recipients(
    client_a, tenant_a, sendable_a, django_assert_num_queries
):
    def batch(n, ref):
        return {**single(sendable_a), "client_ref": ref, "recipients": [f"1380000{i:04d}" for i in range(n)]}

    client_a.post("/api/v1/batches", batch(2, "warm"), format="json")  # first-use rows (counters, settings)
    with CaptureQueriesContext(connection) as small:
        assert client_a.post("/api/v1/batches", batch(3, "small"), format="json").status_code == 202
    with django_assert_num_queries(len(small)):
        assert client_a.post("/api/v1/batches", batch(300, "large"), format="json").status_code == 202


def test_batch_detail_counts_statuses(client_a, sendable_a):
    body = client_a.post(
        "/api/v1/batches", {**single(sendable_a), "recipients": ["13800000001", "12"]}, format="json"
    ).json()
    detail = client_a.get(f"/api/v1/batches/{body['id']}").json()
    assert detail["total"] == 2
    assert detail["status_counts"] == {"accepted": 1, "rejected": 1}
