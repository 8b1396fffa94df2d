"""Long messages under carrier behaviour (issue 10; R-DLV-3, R-BIL-2, R-BIL-8): a long message is
one unit to the customer and exact to the part to the carrier. The simulator's list of accepted
submits is the witness: every part accepted exactly once, all parts of a message under one UDH
reference, and the customer charged for exactly the parts the SMSC accepted."""

from collections import Counter, defaultdict

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from delivery.models import Message, MessagePart, MessageStatus

from .conftest import PRICE, make_sendable
from .live import live_tenant, only_channel, statuses, wait_all_delivered, wait_for
from .test_faults import numbers_for

S = MessageStatus
pytestmark = pytest.mark.faults

# 3 UCS-2 parts (67 characters each at most): 【DemoShop】 + this body is 150+ characters.
LONG_BODY = "尊敬的客户您好，您本月的账单已经生成，" * 8 + "验证码${code}。"


def send_long(client, template, numbers):
    response = client.post(
        "/api/v1/batches",
        {"signature": "DemoShop", "template": template, "params": {"code": "246810"}, "recipients": numbers},
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["rejected"] == 0
    assert {m["segments"] for m in body["messages"]} == {3}
    return [m["id"] for m in body["messages"]]


def accepted_by_destination(sim) -> dict[str, list[tuple[int, int, int]]]:
    parts = defaultdict(list)
    for record in sim.submitted:
        parts[record.destination].append(record.udh)
    return parts


def test_throttled_parts_are_resent_alone_under_the_same_reference(live_db, smsc_factory, worker, settings):
    """Every 4th submit_sm is throttled (0x58): the refused part alone goes again, with the
    reference, total and sequence its accepted siblings carried; nothing accepted is resent; the
    message is `submitted` only when all 3 parts were taken, then delivered; 3 segments charged."""
    settings.DELIVERY_RETRY_BACKOFF_MS = 50
    sim = smsc_factory(credentials={"demo": "demo"}, throttle_every=4)
    only_channel(port=sim.port)
    tenant, client = live_tenant("Long Throttle Co.")
    template = make_sendable(tenant, body=LONG_BODY, message_type="notification")
    worker()
    numbers = numbers_for("136", 12)
    ids = send_long(client, template, numbers)
    wait_all_delivered(tenant, ids)

    assert sim.throttled >= 6
    for destination, udhs in accepted_by_destination(sim).items():
        assert sorted(seq for _, _, seq in udhs) == [1, 2, 3], (destination, udhs)  # each part once
        assert len({(ref, total) for ref, total, _ in udhs}) == 1, (destination, udhs)  # one reference
    assert len(accepted_by_destination(sim)) == len(numbers)
    with tenant_context(tenant):
        assert MessagePart.objects.filter(message_id__in=ids).count() == 3 * len(ids)
        refs = list(Message.objects.filter(pk__in=ids).values_list("concat_ref", flat=True))
    connection.set_schema_to_public()
    assert None not in refs
    from billing.selectors import balance_of

    assert balance_of(tenant=tenant) == 100_000_000 - len(ids) * 3 * PRICE


def test_a_part_refused_for_good_ends_the_message_and_only_accepted_parts_are_charged(
    live_db, smsc_factory, worker, settings
):
    """R-BIL-2/8: parts 1-2 accepted, part 3 refused permanently (0x0b) → failed `partly_refused`,
    2 segments captured and 1 released; never `submitted`."""
    sim = smsc_factory(credentials={"demo": "demo"}, reject_parts={3})
    only_channel(port=sim.port)
    tenant, client = live_tenant("Long Refused Co.")
    template = make_sendable(tenant, body=LONG_BODY, message_type="notification")
    worker()
    ids = send_long(client, template, numbers_for("137", 2))
    wait_for(lambda: set(statuses(tenant, ids).values()) == {S.FAILED}, timeout=30, what="both failed")
    with tenant_context(tenant):
        reasons = set(Message.objects.filter(pk__in=ids).values_list("reason", flat=True))
        history = set(Message.objects.get(pk=ids[0]).events.values_list("to_status", flat=True))
        assert MessagePart.objects.filter(message_id__in=ids).count() == 4
    connection.set_schema_to_public()
    assert reasons == {"partly_refused"}
    assert S.SUBMITTED not in history
    from billing.selectors import balance_of

    assert balance_of(tenant=tenant) == 100_000_000 - len(ids) * 2 * PRICE
    assert Counter(r.udh[2] for r in sim.submitted) == {1: 2, 2: 2}
