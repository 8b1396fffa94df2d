"""What a carrier SMSC does that ours did not (issue 10, issue 20; R-DLV-3, R-DLV-4): receipts in
China local time, receipts sent as data_sm, an SMSC-initiated unbind with submits in flight."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from delivery.models import Message

from .conftest import make_sendable
from .live import live_tenant, only_channel, wait_all_delivered
from .test_faults import assert_each_sent_once_and_charged_once, numbers_for, send_batch

pytestmark = pytest.mark.faults


def test_receipt_dates_are_read_in_the_channels_time_zone(live_db, smsc_factory, worker):
    """A China-time SMSC: done_at is the real instant (was 8 h in the future when read as UTC)."""
    sim = smsc_factory(credentials={"demo": "demo"}, receipt_timezone="Asia/Shanghai")
    only_channel(port=sim.port)  # receipt_time_zone defaults to Asia/Shanghai
    tenant, client = live_tenant("China Time Co.")
    template = make_sendable(tenant)
    worker()
    ids = send_batch(client, template, numbers_for("135", 3))
    wait_all_delivered(tenant, ids)
    with tenant_context(tenant):
        done = list(Message.objects.filter(pk__in=ids).values_list("done_at", flat=True))
    connection.set_schema_to_public()
    now = timezone.now()
    assert all(now - timedelta(minutes=2) <= d <= now + timedelta(seconds=5) for d in done), done


def test_receipts_sent_as_data_sm_are_answered_and_applied(live_db, smsc_factory, worker):
    """SMPP 3.4 requires data_sm_resp; a receipt carried by data_sm settles its message."""
    sim = smsc_factory(credentials={"demo": "demo"}, data_sm_receipts=1.0)
    only_channel(port=sim.port)
    tenant, client = live_tenant("Data SM Co.")
    template = make_sendable(tenant)
    worker()
    numbers = numbers_for("134", 6)
    ids = send_batch(client, template, numbers)
    wait_all_delivered(tenant, ids)
    assert_each_sent_once_and_charged_once(sim, tenant, numbers, ids)
