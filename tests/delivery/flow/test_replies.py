"""R-DLV-5 replies reach the tenant that owns the extension; opt-out keywords act at once
(R-CMP-4); the tenant gets a signed callback and reads replies via the API."""

from django.db import connection
from django_tenants.utils import tenant_context

from delivery.callbacks import delivery_settings_for
from delivery.channels import assign_tenant_number
from delivery.models import InboundMessage
from smsplatform.crypto import decrypt_secret

from .live import SYSTEM, CallbackEndpoint, live_tenant, only_channel, statuses, wait_for


def test_reply_routes_by_extension_and_opts_out_R_DLV_5(live_db, smsc_factory, listener, worker):
    from compliance.models import OptOut

    endpoint = CallbackEndpoint()
    try:
        sim = smsc_factory(credentials={"demo": "demo"})
        channel = only_channel(port=sim.port)
        tenant, client = live_tenant("Replies Co.", callback_url=endpoint.url)
        other, _ = live_tenant("Other Co.")
        ext = str(channel.pk % 100).zfill(2) + str(tenant.pk % 1000).zfill(3)
        assign_tenant_number(tenant=tenant, extension=ext, actor=SYSTEM)
        assign_tenant_number(tenant=other, extension=ext + "9", actor=SYSTEM)  # a longer, different extension
        worker(threads=1)
        listener(channel.pk)
        wait_for(lambda: sim.binds >= 1, what="listener bound")
        sim.inject_mo("8613800138001", f"10690{ext}", "TD")

        def stored():
            with tenant_context(tenant):
                rows = list(InboundMessage.objects.values_list("source", "text", "keyword_action"))
            connection.set_schema_to_public()
            return rows

        assert wait_for(stored, what="reply stored") == [("+8613800138001", "TD", "opt_out")]
        with tenant_context(tenant):
            assert OptOut.objects.filter(number="+8613800138001").exists()
        with tenant_context(other):
            assert not InboundMessage.objects.exists()
        connection.set_schema_to_public()
        assert [r["text"] for r in client.get("/api/v1/replies").json()["results"]] == ["TD"]
        secret = decrypt_secret(delivery_settings_for(tenant=tenant).callback_secret)
        events = wait_for(lambda: endpoint.events(secret), what="reply callback")
        assert events[0]["event"] == "reply"
        assert events[0]["keyword_action"] == "opt_out"
    finally:
        endpoint.close()


def _replies(tenant):
    with tenant_context(tenant):
        rows = list(InboundMessage.objects.values_list("source", "text", "keyword_action"))
    connection.set_schema_to_public()
    return rows


def test_reply_to_the_bare_address_reaches_the_last_sender_and_opts_out(live_db, smsc_factory, listener, worker):
    """Issue 10 / R-CMP-4: the handset answers the bare access code (no tenant extension); the
    tenant that last sent to it through this SMSC account gets the reply and the opt-out."""
    from compliance.models import OptOut

    from .conftest import make_sendable
    from .test_faults import send_batch

    sim = smsc_factory(credentials={"demo": "demo"}, access_codes={"10690"})
    channel = only_channel(port=sim.port)
    tenant, client = live_tenant("Bare Address Co.")
    ext = str(channel.pk % 100).zfill(2) + str(tenant.pk % 1000).zfill(3)
    assign_tenant_number(tenant=tenant, extension=ext, actor=SYSTEM)
    template = make_sendable(tenant)
    worker(threads=1)
    listener(channel.pk)
    ids = send_batch(client, template, ["+8613800138077"])
    # The handset answers after our send is on record (the result names the last sender), not in
    # the milliseconds between the SMSC's answer and the worker recording it.
    wait_for(lambda: set(statuses(tenant, ids).values()) <= {"submitted", "delivered"}, what="send recorded")
    wait_for(lambda: sim.reply_mo("8613800138077", "退订", bare=True), what="bare reply sent")
    assert wait_for(lambda: _replies(tenant), what="reply stored") == [("+8613800138077", "退订", "opt_out")]
    with tenant_context(tenant):
        assert OptOut.objects.filter(number="+8613800138077").exists()
    connection.set_schema_to_public()


def test_a_concatenated_reply_is_joined_before_keyword_handling(live_db, smsc_factory, listener):
    """Issue 10: a two-part MO is one reply (stored once) and its "STOP" is recognised."""
    sim = smsc_factory(credentials={"demo": "demo"})
    channel = only_channel(port=sim.port)
    tenant, _ = live_tenant("Long Reply Co.")
    ext = str(channel.pk % 100).zfill(2) + str(tenant.pk % 1000).zfill(3)
    assign_tenant_number(tenant=tenant, extension=ext, actor=SYSTEM)
    listener(channel.pk)
    wait_for(lambda: sim.binds >= 1, what="listener bound")
    text = "Please remove me from this list, I asked before several times already. " * 3 + "STOP"
    sim.inject_mo("8613800138078", f"10690{ext}", text, concat="udh8", parts=2, order="reverse")
    rows = wait_for(lambda: _replies(tenant), what="reply stored")
    assert rows == [("+8613800138078", text, "opt_out")]
