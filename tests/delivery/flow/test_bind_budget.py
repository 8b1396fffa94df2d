"""Issue 20 items 1-2 (R-DLV-3, R-DLV-4) on the real stack: an SMSC account that allows 2 binds,
three worker threads that would each like a bind, and the receipt listener. The senders and the
listener lease their binds from the account's budget (delivery/binds.py) before binding: the
SMSC never refuses a bind, no message fails or uses an attempt on a bind, every message is
accepted once and delivered. And a channel with separate transmitter/receiver binds."""

from collections import Counter

from django.db import connection
from django_tenants.utils import tenant_context

from delivery.models import Channel, Message

from .conftest import make_sendable
from .live import live_tenant, only_channel, wait_all_delivered


def _send(client, template, numbers):
    response = client.post(
        "/api/v1/batches",
        {"signature": "DemoShop", "template": template, "params": {"code": "4711"}, "recipients": numbers},
        format="json",
    )
    assert response.status_code == 202, response.content
    return [m["id"] for m in response.json()["messages"]]


def test_two_bind_account_three_worker_threads_and_listener_never_refused_r_dlv_3(
    live_db, smsc_factory, worker, listener, settings
):
    settings.DELIVERY_JOB_SIZE = 15
    sim = smsc_factory(credentials={"demo": "demo"}, max_binds=2, response_delay=0.01)
    # bind_count 3: without the budget each worker thread opened its own bind (4 with the listener)
    channel = only_channel(port=sim.port, bind_count=3, max_binds=2)
    tenant, client = live_tenant("Bind Budget Co.")
    template = make_sendable(tenant)
    listener(channel.pk)
    worker(threads=3)
    numbers = [f"+86135{i:08d}" for i in range(90)]
    ids = _send(client, template, numbers)
    wait_all_delivered(tenant, ids, timeout=90)

    assert sim.bind_limit_refusals == 0
    assert sim.peak_binds["demo"] <= 2
    accepted = Counter(r.destination for r in sim.submitted)
    assert sorted(accepted) == sorted(n.lstrip("+") for n in numbers)
    assert set(accepted.values()) == {1}  # every message accepted once
    with tenant_context(tenant):
        attempts = set(Message.objects.filter(pk__in=ids).values_list("submit_attempts", flat=True))
    connection.set_schema_to_public()
    assert attempts == {1}
    assert Channel.objects.get(pk=channel.pk).down_until is None


def test_transmitter_receiver_channel_delivers_and_receives_receipts_r_dlv_3_r_dlv_4(
    live_db, smsc_factory, worker, listener
):
    """bind_mode "split": senders bind as transmitters, the listener as receiver; receipts only
    reach the receiver bind, so every message delivered proves the listener got them."""
    sim = smsc_factory(credentials={"demo": "demo"}, max_binds=2)
    channel = only_channel(port=sim.port, bind_count=2, max_binds=2, bind_mode="split")
    tenant, client = live_tenant("Split Binds Co.")
    template = make_sendable(tenant)
    listener(channel.pk)
    worker(threads=2)
    ids = _send(client, template, [f"+86134{i:08d}" for i in range(20)])
    wait_all_delivered(tenant, ids, timeout=60)

    open_binds = [c for c in list(sim._connections) if not c.closed and c.system_id == "demo"]
    assert sorted((c.can_transmit, c.can_receive) for c in open_binds) == [(False, True), (True, False)]
    assert sim.bind_limit_refusals == 0
    assert len(sim.submitted) == 20
