"""The whole delivery flow on the real stack (R-DLV-1/3/4, R-BIL-2/8):

API send → compliance gate → hold → outbox → dramatiq Worker (Redis broker, started here) →
smpplib → simulator socket → submit_sm_resp → capture → receipt → delivered → signed callback to
a local HTTP endpoint → billing shows the hold captured with the carrier id.
"""

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from delivery.channels import delivery_settings_for
from delivery.models import CarrierMessageId, Message, MessageStatus
from delivery.services import decrypt_secret

from .conftest import make_sendable
from .live import CallbackEndpoint, live_tenant, only_channel, statuses, wait_all_delivered, wait_for

S = MessageStatus


@pytest.fixture
def endpoint():
    ep = CallbackEndpoint()
    yield ep
    ep.close()


def test_send_to_delivered_callback_and_capture_end_to_end(live_db, smsc_factory, endpoint, worker):
    sim = smsc_factory(credentials={"demo": "demo"}, receipt_delay=0.05)
    channel = only_channel(port=sim.port)
    tenant, client = live_tenant("E2E Co.", callback_url=endpoint.url)
    template = make_sendable(tenant)
    worker()

    response = client.post(
        "/api/v1/messages",
        {
            "to": "13800138000",
            "signature": "DemoShop",
            "template": template,
            "params": {"code": "246810"},
            "client_ref": "e2e-1",
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    message_id = response.json()["id"]

    wait_for(lambda: statuses(tenant, [message_id]).get(message_id) == S.DELIVERED, timeout=30, what="delivered")
    secret = decrypt_secret(delivery_settings_for(tenant=tenant).callback_secret)
    events = wait_for(lambda: [e for e in endpoint.events(secret) if e.get("status") == S.DELIVERED], what="callback")
    assert events[0]["message_id"] == message_id
    assert events[0]["client_ref"] == "e2e-1"

    # The simulator received it exactly once, with the rendered text.
    assert [(r.destination, r.text) for r in sim.submitted] == [("8613800138000", "【DemoShop】Your code is 246810.")]
    with tenant_context(tenant):
        message = Message.objects.get(pk=message_id)
        part = message.parts.get()
        history = [e.to_status for e in message.events.all()]
    connection.set_schema_to_public()
    assert history == [S.ACCEPTED, S.QUEUED, S.SUBMITTING, S.SUBMITTED, S.DELIVERED]
    lookup = CarrierMessageId.objects.get(channel=channel, carrier_message_id=part.carrier_message_id)
    assert (lookup.schema_name, lookup.message_id) == (tenant.schema_name, message_id)

    # R-BIL-2/8: billed once the carrier accepted, with its message id and submit time.
    from billing.models import Hold

    hold = Hold.objects.get(pk=message.hold_id)
    assert hold.state == "captured"
    assert hold.carrier_message_id == part.carrier_message_id
    assert hold.submitted_at is not None
    response = client.get(f"/api/v1/messages/{message_id}")
    assert response.json()["status"] == S.DELIVERED
    assert response.json()["carrier_message_ids"] == [part.carrier_message_id]
    # … and the bill shows it: reconciliation billed == carrier accepted (R-BIL-8).
    report = client.get(f"/api/v1/billing/reconciliation/{timezone.localtime(message.created_at):%Y-%m}").json()
    assert (report["submitted"], report["carrier_accepted"], report["delivered"], report["billed"]) == (1, 1, 1, 1)
    assert report["matches"] is True


def test_long_chinese_message_is_sent_in_parts_and_delivered_when_every_part_is(live_db, smsc_factory, worker):
    """R-DLV-3 UCS-2 concatenation, R-BIL-2 segments, R-DLV-4 one receipt per part."""
    sim = smsc_factory(credentials={"demo": "demo"})
    only_channel(port=sim.port)
    tenant, client = live_tenant("Long Co.")
    body = "尊敬的客户，您的订单${code}已经发货，预计三天内送达。如有疑问请致电客服热线，我们将竭诚为您服务，感谢您的支持与信任！"
    template = make_sendable(tenant, body=body, message_type="notification")
    worker()
    response = client.post(
        "/api/v1/messages",
        {
            "to": "13800138002",
            "signature": "DemoShop",
            "template": template,
            "params": {"code": "20261123"},
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert response.json()["segments"] == 2
    message_id = response.json()["id"]
    wait_for(lambda: statuses(tenant, [message_id]).get(message_id) == S.DELIVERED, what="delivered")
    assert len(sim.submitted) == 2
    assert sim.messages()[0][1] == "【DemoShop】" + body.replace("${code}", "20261123")
    with tenant_context(tenant):
        parts = list(Message.objects.get(pk=message_id).parts.order_by("part").values_list("part", "status"))
    connection.set_schema_to_public()
    assert parts == [(1, S.DELIVERED), (2, S.DELIVERED)]


def test_a_worker_process_opens_at_most_bind_count_binds_R_DLV_3(live_db, smsc_factory, worker, settings):
    """Three worker threads, six jobs, bind_count 1: one bind, used by one thread at a time."""
    settings.DELIVERY_JOB_SIZE = 20
    sim = smsc_factory(credentials={"demo": "demo"})
    only_channel(port=sim.port, bind_count=1)
    tenant, client = live_tenant("Binds Co.")
    template = make_sendable(tenant)
    worker(threads=3)
    response = client.post(
        "/api/v1/batches",
        {
            "signature": "DemoShop",
            "template": template,
            "params": {"code": "4711"},
            "recipients": [f"+86136{i:08d}" for i in range(120)],
        },
        format="json",
    )
    ids = [m["id"] for m in response.json()["messages"]]
    wait_all_delivered(tenant, ids, timeout=60)
    assert sim.binds == 1
    assert len(sim.submitted) == 120
