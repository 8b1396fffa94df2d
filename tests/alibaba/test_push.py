"""R-DLV-4/5: status and reply callbacks in Alibaba's SmsReport / SmsUp format for tenants that
choose it; our own format unchanged for the others."""

import json

from delivery import callbacks
from delivery.models import CallbackDelivery, DeliverySettings
from tenants.services import Actor

from ..delivery.flow.conftest import add_message


def _alibaba(tenant, url="http://127.0.0.1:9/cb"):
    callbacks.update_callback_settings(
        tenant=tenant, callback_url=url, actor=Actor.system("t"), callback_format="alibaba"
    )


def test_delivered_status_is_an_sms_report_array_R_DLV_4(tenant_a):
    _alibaba(tenant_a)
    message = add_message(tenant_a, status="delivered", client_ref="acs:0123456789abcdef:order-7")
    item = callbacks.enqueue_status_callback(tenant=tenant_a, message=message)
    (report,) = json.loads(item.body)
    assert report["phone_number"] == "13800138000"
    assert report["success"] is True
    assert report["err_code"] == "DELIVERED"
    assert report["biz_id"] == str(message.request_id)
    assert report["out_id"] == "order-7"
    assert set(report) == {
        "phone_number", "send_time", "report_time", "success", "err_code", "err_msg", "sms_size", "biz_id", "out_id"
    }  # fmt: skip


def test_a_state_that_is_not_final_is_not_pushed_in_alibaba_format_R_DLV_4(tenant_a):
    _alibaba(tenant_a)
    message = add_message(tenant_a, status="submitted")
    assert callbacks.enqueue_status_callback(tenant=tenant_a, message=message) is None
    assert not CallbackDelivery.objects.filter(tenant=tenant_a).exists()


def test_reply_is_an_sms_up_array_R_DLV_5(tenant_a):
    _alibaba(tenant_a)
    item = callbacks.enqueue_callback(
        tenant=tenant_a,
        url="",
        event="reply",
        payload={"event": "reply", "id": 5, "from": "+8613800138000", "to": "106900011", "text": "TD",
                 "received_at": "2026-01-02T03:04:05+00:00"},
    )  # fmt: skip
    assert json.loads(item.body) == [
        {
            "phone_number": "13800138000",
            "send_time": "2026-01-02 11:04:05",
            "content": "TD",
            "sign_name": "",
            "dest_code": "106900011",
            "sequence_id": 5,
        }
    ]


def test_platform_format_stays_the_default(tenant_a):
    assert callbacks.delivery_settings_for(tenant=tenant_a).callback_format == "platform"
    DeliverySettings.objects.filter(tenant=tenant_a).update(callback_url="http://127.0.0.1:9/cb")
    message = add_message(tenant_a, status="delivered")
    body = json.loads(callbacks.enqueue_status_callback(tenant=tenant_a, message=message).body)
    assert body["event"] == "message.status"
