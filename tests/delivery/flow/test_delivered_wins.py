"""Issue 20 "delivered wins" (R-DLV-4, R-BIL-2, R-BIL-8): a message failed for want of evidence
(the unconfirmed-submission policy "fail") whose receipt arrives afterwards is delivered, gets a
status event and a callback, and its released hold is captured again: parts billed = parts the
SMSC accepted, and applying the evidence twice charges nothing twice."""

import json
import time

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from delivery.models import CallbackDelivery, Message, MessageStatus, PendingReceipt, StatusEvent
from delivery.sweeps import reconcile_unknown_submissions

from .conftest import PRICE, make_sendable
from .live import CallbackEndpoint, live_tenant, only_channel, statuses, wait_for
from .test_faults import numbers_for, send_batch

S = MessageStatus
pytestmark = pytest.mark.faults


def test_receipt_after_unconfirmed_failure_delivers_and_captures_the_released_hold_R_BIL_2(
    live_db, smsc_factory, worker, listener, settings
):
    from billing.models import Hold
    from billing.selectors import balance_of

    settings.DELIVERY_UNKNOWN_POLICY = {"default": ("fail", 0)}
    # The SMSC accepts the submit, drops the link before answering it, and sends the receipt
    # seconds later on the listener's bind: after the sweep has failed the message.
    sim = smsc_factory(
        credentials={"demo": "demo"}, drop_after_accept_every=1, drop_after_accept_times=1, receipt_delay=3.0
    )
    channel = only_channel(port=sim.port)
    listener(channel.pk)
    endpoint = CallbackEndpoint()
    try:
        tenant, client = live_tenant("Delivered Wins Co.", callback_url=endpoint.url)
        template = make_sendable(tenant)
        worker()
        [message_id] = send_batch(client, template, numbers_for("151", 1))

        wait_for(lambda: statuses(tenant, [message_id]).get(message_id) == S.UNKNOWN_SUBMISSION, what="unknown")
        reconcile_unknown_submissions()  # no evidence yet: policy "fail"
        connection.set_schema_to_public()
        assert statuses(tenant, [message_id]) == {message_id: S.FAILED}
        with tenant_context(tenant):
            hold_id = Message.objects.get(pk=message_id).hold_id
        connection.set_schema_to_public()
        assert Hold.objects.get(pk=hold_id).state == "released"
        assert balance_of(tenant=tenant) == 100_000_000

        wait_for(lambda: PendingReceipt.objects.filter(channel=channel).exists(), what="the late receipt")
        for _ in range(2):  # the sweep again, twice: the second run changes nothing
            reconcile_unknown_submissions()
            connection.set_schema_to_public()

        assert statuses(tenant, [message_id]) == {message_id: S.DELIVERED}
        with tenant_context(tenant):
            moves = list(
                StatusEvent.objects.filter(message_id=message_id)
                .order_by("at", "pk")
                .values_list("to_status", flat=True)
            )
            message = Message.objects.get(pk=message_id)
        connection.set_schema_to_public()
        assert moves[-2:] == [S.FAILED, S.DELIVERED]
        assert message.reason == ""
        hold = Hold.objects.get(pk=hold_id)
        assert (hold.state, hold.captured_segments, hold.charged) == ("captured", 1, PRICE)
        assert len(sim.accepted_parts()) == 1
        assert balance_of(tenant=tenant) == 100_000_000 - PRICE  # parts billed = parts accepted
        bodies = [json.loads(c.body) for c in CallbackDelivery.objects.filter(tenant=tenant, event="message.status")]
        assert [b["status"] for b in bodies if b["message_id"] == message_id] == [S.FAILED, S.DELIVERED]
        time.sleep(0.2)
    finally:
        endpoint.close()
