"""Issue 21 item 3 (R-DLV-3, R-DLV-4): a part long `submitted` without a receipt is asked for with
query_sm (channels with query_sm_enabled) and a final answer is applied as its receipt. Parts are
submitted to the simulator over a real bind; the sweep asks over the worker's bind pool."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context
from smpplib import consts

from delivery import query
from delivery.inbound import record_receipt
from delivery.models import Message, MessagePart, MessageStatus, PendingReceipt
from delivery.sender import apply_submit_results, source_address
from delivery.smpp.pool import SessionRegistry
from delivery.smpp.receipts import Receipt
from delivery.smpp.session import SmppSession

from .conftest import add_message, add_outbox

S = MessageStatus
LONG = "尊敬的客户您好，您本月的账单已经生成，" * 8  # 3 UCS-2 parts


@pytest.fixture(autouse=True)
def _fresh_pool():
    SessionRegistry.close_all()
    yield
    SessionRegistry.close_all()


@pytest.fixture
def sim(smsc_factory):
    return smsc_factory(credentials={"demo": "demo"}, receipt_loss=1.0)


def submitted(tenant, channel, sim, *, text="【Demo】hello", recipient="+8613800138000", age_minutes=11):
    """A message the SMSC accepted (real ids from the simulator) whose receipts never came."""
    msg = add_message(
        tenant, status=S.SUBMITTING, claim_token="tok", channel_id=channel.pk, content=text, recipient=recipient
    )
    results = []
    session = SmppSession(
        host="127.0.0.1",
        port=sim.port,
        system_id="demo",
        password="demo",
        on_result=results.append,
        on_inbound=lambda pdu: None,
    )
    session.connect()
    with tenant_context(tenant):
        source = source_address(channel=channel, tenant=tenant)
    parts = session.submit(
        ref=f"{tenant.schema_name}:{msg.pk}:tok", source=source, destination=recipient.lstrip("+"), text=text
    )
    session.drain(5)
    session.close()
    assert len([r for r in results if r.ok]) == parts
    with tenant_context(tenant):
        Message.objects.filter(pk=msg.pk).update(segments=parts)
    apply_submit_results(channel_id=channel.pk, results=results)
    add_outbox(tenant, [msg])
    with tenant_context(tenant):
        MessagePart.objects.filter(message_id=msg.pk).update(
            submitted_at=timezone.now() - timedelta(minutes=age_minutes)
        )
        assert Message.objects.get(pk=msg.pk).status == S.SUBMITTED
    return msg


def state(tenant, msg):
    with tenant_context(tenant):
        m = Message.objects.get(pk=msg.pk)
        parts = list(MessagePart.objects.filter(message=m).order_by("part").values_list("status", "stat"))
    return m.status, parts


def test_a_part_whose_receipt_the_smsc_gave_up_on_is_settled_by_query_sm_R_DLV_4(tenant_a, make_channel, sim):
    sim.outcomes = {"UNDELIV": 1.0}
    channel = make_channel(port=sim.port, query_sm_enabled=True)
    msg = submitted(tenant_a, channel, sim)
    counts = query.query_stale_parts()
    assert counts["asked"] == 1
    assert counts["final"] == 1
    assert state(tenant_a, msg) == (S.UNDELIVERED, [(S.UNDELIVERED, "UNDELIV")])
    assert sim.receipts_lost == 1  # no receipt ever came: the answer was the SMSC's
    assert PendingReceipt.objects.filter(channel=channel, applied_at__isnull=False).count() == 1


def test_the_part_is_asked_with_the_id_exactly_as_the_smsc_gave_it(tenant_a, make_channel, smsc_factory):
    """SMPP 3.4 §4.8.1: query_sm carries the id the SMSC assigned. We match receipts on a
    normalised id ("1000"); an SMSC comparing ids as text knows only "0000001000"."""
    sim = smsc_factory(credentials={"demo": "demo"}, receipt_loss=1.0, query_exact_ids=True)
    channel = make_channel(port=sim.port, query_sm_enabled=True)
    msg = submitted(tenant_a, channel, sim, text=LONG)
    with tenant_context(tenant_a):
        ids = list(MessagePart.objects.filter(message_id=msg.pk).values_list("carrier_message_id", "smsc_message_id"))
    assert all(raw != normalised and raw.lstrip("0").lower() == normalised for normalised, raw in ids)
    assert query.query_stale_parts()["final"] == 3
    assert sim.queries_failed == 0
    assert state(tenant_a, msg)[0] == S.DELIVERED


def test_each_part_of_a_long_message_is_asked_and_the_worst_outcome_wins(tenant_a, make_channel, sim):
    channel = make_channel(port=sim.port, query_sm_enabled=True)
    msg = submitted(tenant_a, channel, sim, text=LONG)
    with tenant_context(tenant_a):
        second = MessagePart.objects.get(message_id=msg.pk, part=2).carrier_message_id
    sim.set_state(second, "EXPIRED")
    assert query.query_stale_parts()["final"] == 3
    status, parts = state(tenant_a, msg)
    assert status == S.EXPIRED
    assert [stat for _, stat in parts] == ["DELIVRD", "EXPIRED", "DELIVRD"]


def test_a_channel_without_query_sm_enabled_is_never_asked(tenant_a, make_channel, sim):
    channel = make_channel(port=sim.port)  # default: off (not every carrier supports query_sm)
    msg = submitted(tenant_a, channel, sim)
    assert query.query_stale_parts()["asked"] == 0
    assert sim.queries_received == 0
    assert state(tenant_a, msg)[0] == S.SUBMITTED


def test_parts_are_asked_only_after_the_wait_and_then_once_per_interval(tenant_a, make_channel, sim, settings):
    sim.receipt_loss, sim.receipt_delay = 0.0, 3600  # en route for an hour
    channel = make_channel(port=sim.port, query_sm_enabled=True)
    young = submitted(tenant_a, channel, sim, recipient="+8613800138001", age_minutes=2)
    old = submitted(tenant_a, channel, sim, recipient="+8613800138002")
    counts = query.query_stale_parts()
    assert (counts["asked"], counts["pending"]) == (1, 1)  # the old one, still en route
    assert query.query_stale_parts()["asked"] == 0  # not again before the interval
    later = timezone.now() + timedelta(seconds=settings.DELIVERY_QUERY_AFTER_SECONDS + 1)
    assert query.query_stale_parts(now=later)["asked"] == 2  # both old enough now
    assert state(tenant_a, young)[0] == state(tenant_a, old)[0] == S.SUBMITTED


def test_an_id_the_smsc_no_longer_knows_leaves_the_message_submitted(tenant_a, make_channel, sim):
    channel = make_channel(port=sim.port, query_sm_enabled=True)
    msg = submitted(tenant_a, channel, sim)
    sim._states.clear()  # purged from the SMSC's store
    counts = query.query_stale_parts()
    assert counts["unknown_at_smsc"] == 1
    assert sim.queries_failed == 1
    assert state(tenant_a, msg) == (S.SUBMITTED, [(S.SUBMITTED, "")])  # the 72 h expiry stays the backstop


def test_a_carrier_without_query_sm_is_reported_and_nothing_changes(tenant_a, make_channel, sim, caplog):
    sim.query_sm_supported = False
    channel = make_channel(port=sim.port, query_sm_enabled=True)
    msg = submitted(tenant_a, channel, sim)
    counts = query.query_stale_parts()
    assert counts["unsupported"] == 1
    assert f"channel {channel.pk}: the SMSC refuses query_sm (0x{consts.SMPP_ESME_RINVCMDID:08x})" in caplog.text
    assert state(tenant_a, msg)[0] == S.SUBMITTED
    assert query.query_stale_parts()["asked"] == 0  # not hammered every minute


def test_a_real_receipt_after_the_answer_changes_nothing(tenant_a, make_channel, sim):
    channel = make_channel(port=sim.port, query_sm_enabled=True)
    msg = submitted(tenant_a, channel, sim)
    query.query_stale_parts()
    with tenant_context(tenant_a):
        carrier_id = MessagePart.objects.get(message_id=msg.pk).carrier_message_id
        events = Message.objects.get(pk=msg.pk).events.count()
    now = timezone.now()
    late = Receipt(
        message_id=carrier_id, stat="UNDELIV", err="001", submit_date=now, done_date=now, status="undelivered"
    )
    record_receipt(channel_id=channel.pk, receipt=late)
    assert state(tenant_a, msg) == (S.DELIVERED, [(S.DELIVERED, "DELIVRD")])
    with tenant_context(tenant_a):
        assert Message.objects.get(pk=msg.pk).events.count() == events


def test_unknown_submissions_are_not_asked_they_have_no_carrier_id(tenant_a, make_channel, sim):
    """Their lost answer is the id query_sm needs: evidence and the policy decide (docs/delivery.md)."""
    channel = make_channel(port=sim.port, query_sm_enabled=True)
    msg = add_message(tenant_a, status=S.UNKNOWN_SUBMISSION, channel_id=channel.pk)
    add_outbox(tenant_a, [msg])
    assert query.query_stale_parts()["asked"] == 0
    assert sim.queries_received == 0


def test_the_sweep_runs_every_minute():
    from delivery import actors
    from delivery.schedule import SCHEDULE

    assert any(p.actor is actors.query_stale_parts_job for p in SCHEDULE)


def test_smpp_final_date_is_read_with_its_offset():
    assert query.parse_smpp_time("251130101010032+").isoformat() == "2025-11-30T02:10:10+00:00"
    assert query.parse_smpp_time("251130101010000-").isoformat() == "2025-11-30T10:10:10+00:00"
    assert query.parse_smpp_time("000000000100000R") is None
    assert query.parse_smpp_time("") is None
