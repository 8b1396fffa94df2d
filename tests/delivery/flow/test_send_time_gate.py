"""Enforcement at send time (issue 10 item 6; R-TEN-3, R-CMP-1, R-CMP-4, R-BIL-2): what changed
between acceptance and sending is respected — a suspended tenant's queued message, a message
to a number that opted out meanwhile — it ends cancelled with the reason and its hold released."""

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from billing.models import Hold
from delivery.models import Message
from tenants import services as tenant_services

from .conftest import make_sendable
from .live import SYSTEM, live_tenant, only_channel, statuses, wait_for
from .test_faults import send_batch

pytestmark = pytest.mark.faults


def _ended(tenant, ids):
    with tenant_context(tenant):
        rows = dict(Message.objects.filter(pk__in=ids).values_list("pk", "reason"))
        holds = list(Message.objects.filter(pk__in=ids).values_list("hold_id", flat=True))
    connection.set_schema_to_public()
    return rows, set(Hold.objects.filter(pk__in=holds).values_list("state", flat=True))


def test_a_suspended_tenants_queued_messages_are_cancelled_at_send_time_R_TEN_3(live_db, smsc_factory, worker):
    sim = smsc_factory(credentials={"demo": "demo"})
    only_channel(port=sim.port)
    tenant, client = live_tenant("Suspended Later Co.")
    template = make_sendable(tenant)
    ids = send_batch(client, template, ["+8613600000001", "+8613600000002"])  # accepted, no worker yet
    tenant_services.suspend_tenant(tenant=tenant, actor=SYSTEM, reason="violation under review")
    worker()
    wait_for(lambda: set(statuses(tenant, ids).values()) == {"cancelled"}, what="both cancelled")
    reasons, holds = _ended(tenant, ids)
    assert set(reasons.values()) == {"tenant_suspended"}
    assert holds == {"released"}
    assert sim.submitted == []


def test_an_opt_out_after_acceptance_stops_the_message_R_CMP_4(live_db, smsc_factory, worker):
    from compliance import services as compliance

    sim = smsc_factory(credentials={"demo": "demo"})
    only_channel(port=sim.port)
    tenant, client = live_tenant("Opted Out Later Co.")
    template = make_sendable(tenant)
    ids = send_batch(client, template, ["+8613600000003", "+8613600000004"])
    with tenant_context(tenant):
        compliance.add_opt_out(tenant=tenant, number="+8613600000003", actor=SYSTEM)
    connection.set_schema_to_public()
    worker()
    wait_for(lambda: sorted(statuses(tenant, ids).values()) == ["cancelled", "delivered"], what="settled")
    reasons, _ = _ended(tenant, ids)
    assert sorted(reasons.values()) == ["", "opted_out"]
    assert [r.destination for r in sim.submitted] == ["8613600000004"]
