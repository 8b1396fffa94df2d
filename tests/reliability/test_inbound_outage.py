"""Issue 21, items 1 and 2 (R-DLV-4, R-DLV-5): the receipt listener rides out a database outage,
and no receipt or reply is refused for our own outage.

Real PostgreSQL behind a TcpProxy (tests/reliability/outage.py) that is taken down, the SMSC
simulator over real sockets, a real `manage.py run_listener` process. The simulator here gives
up at once on a deliver_sm answered with an error (max_redeliveries=0): whatever we refused
would be lost, as with an SMSC that runs out of patience.
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from delivery import spool
from delivery.channels import assign_tenant_number
from delivery.models import InboundMessage, MessageStatus, PendingReceipt, SpooledInbound
from delivery.smpp.receipts import parse_receipt
from delivery.smpp.results import InboundPdu

from ..delivery.flow.conftest import make_sendable
from ..delivery.flow.live import ROOT, SYSTEM, live_tenant, only_channel, statuses, test_database_url, wait_for
from .outage import database_proxy, through_proxy

S = MessageStatus


@pytest.fixture(autouse=True)
def spool_path(settings, tmp_path):
    settings.DELIVERY_SPOOL_DIR = tmp_path / "spool"
    spool._next_try = 0.0
    return settings.DELIVERY_SPOOL_DIR


def _replies(tenant):
    with tenant_context(tenant):
        rows = list(InboundMessage.objects.order_by("pk").values_list("source", "text"))
    connection.set_schema_to_public()
    return rows


def _receipt_pdu(carrier_id: str, number: str) -> InboundPdu:
    text = f"id:{carrier_id} sub:001 dlvrd:001 submit date:2611271200 done date:2611271201 stat:DELIVRD err:000 text:x"
    return InboundPdu(
        is_receipt=True,
        receipt=parse_receipt(short_message=text, tlvs={}),
        source_addr=number,
        destination_addr="10690",
        text=text,
        esm_class=4,
    )


# --- the spool itself ---------------------------------------------------------------------------


def test_spooled_receipts_and_replies_are_stored_exactly_once_however_often_replayed(live_db):
    from ..conftest import create_tenant

    tenant = create_tenant("Spool Once Co.")
    assign_tenant_number(tenant=tenant, extension="77123", actor=SYSTEM)
    connection.set_schema_to_public()
    mo = InboundPdu(is_receipt=False, receipt=None, source_addr="8613800001111", destination_addr="77123", text="hi")
    pdus = [_receipt_pdu("SPOOL0001", "8613800001111"), _receipt_pdu("SPOOL0002", "8613800002222"), mo]
    path = spool.spool_inbound(channel_id=None, pdus=pdus)
    assert path.exists()
    # A replay that committed and then died before deleting its file …
    stored, duplicates, _ = spool._replay_file(path)
    assert (stored, duplicates) == (3, 0)
    # … is replayed again, twice: nothing is stored a second time.
    assert spool.replay()["duplicates"] == 3
    assert spool.replay()["files"] == 0
    assert not spool.spooled_files()
    carrier_ids = [p.receipt.message_id for p in pdus[:2]]
    assert PendingReceipt.objects.filter(carrier_message_id__in=carrier_ids).count() == 2
    assert _replies(tenant) == [("+8613800001111", "hi")]
    assert SpooledInbound.objects.count() >= 3


def test_replay_while_the_database_is_still_down_keeps_the_spool(live_db):
    path = spool.spool_inbound(channel_id=None, pdus=[_receipt_pdu("SPOOL0003", "8613800003333")])
    with through_proxy() as db:
        db.down()
        spool._next_try = 0.0
        assert spool.replay_if_due() is None  # logged, not raised
        assert path.exists()
        db.up()
        spool._next_try = 0.0
        assert spool.replay_if_due()["stored"] == 1
    assert not path.exists()


# --- receipts on the worker's binds (ChannelSession) ---------------------------------------------


@pytest.mark.faults
def test_receipts_arriving_during_a_database_outage_are_acknowledged_and_applied_after(
    live_db, smsc_factory, worker, figure
):
    """Finding "stuck messages": receipts refused during the outage stayed `submitted` for 72 h
    once the SMSC gave up. Now they are spooled and acknowledged, and applied after it."""
    sim = smsc_factory(credentials={"demo": "demo"}, receipt_delay=4.0, max_redeliveries=0)
    only_channel(port=sim.port)
    tenant, client = live_tenant("Receipt Outage Co.")
    template = make_sendable(tenant)
    worker(threads=2)
    numbers = [f"+86136{n:08d}" for n in range(12)]
    response = client.post(
        "/api/v1/batches",
        {"signature": "DemoShop", "template": template, "params": {"code": "1234"}, "recipients": numbers},
        format="json",
    )
    assert response.status_code == 202
    ids = [m["id"] for m in response.json()["messages"]]
    with through_proxy() as db:
        wait_for(lambda: set(statuses(tenant, ids).values()) == {S.SUBMITTED}, timeout=30, what="all submitted")
        db.down()  # the receipts (4 s after each submit) arrive during the outage
        wait_for(
            lambda: sim.receipts_sent >= len(ids) and not any(d.status is None for d in sim.delivered),
            timeout=30,
            what="every receipt answered",
        )
        time.sleep(1)
        db.up()
        connection.close()  # this test thread's own connection died with the outage
        wait_for(
            lambda: set(statuses(tenant, ids).values()) == {S.DELIVERED},
            timeout=30,
            what="the spooled receipts applied",
            describe=lambda: Counter(statuses(tenant, ids).values()),
        )
    figure(
        "receipts refused during a database outage", sim.deliver_nacked, unit="receipts", scale=f"{len(ids)} receipts"
    )
    assert sim.deliver_nacked == 0
    assert sim.deliver_acked >= len(ids)


# --- the listener process ------------------------------------------------------------------------


@pytest.mark.faults
def test_listener_process_survives_a_database_outage_and_stores_each_reply_once(live_db, smsc_factory, spool_path):
    """Finding "the receipt listener exits": run_listener exited (rc=1) on any outage over ~10 s.
    Now it keeps its bind, acknowledges replies through the spool, and stores them once after."""
    sim = smsc_factory(credentials={"demo": "demo"}, max_redeliveries=0)
    channel = only_channel(port=sim.port)
    tenant, _ = live_tenant("Listener Outage Co.")
    ext = str(tenant.pk % 100000).zfill(5)
    assign_tenant_number(tenant=tenant, extension=ext, actor=SYSTEM)
    connection.set_schema_to_public()
    proxy = database_proxy()
    url = test_database_url(via=proxy.url_host)
    env = {**os.environ, "DATABASE_URL": url, "DELIVERY_SPOOL_DIR": str(spool_path)}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_listener", "--channel", str(channel.pk)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: sim.binds >= 1, timeout=30, what="listener bound")
        sim.inject_mo("8613800005555", f"10690{ext}", "before")
        wait_for(lambda: len(_replies(tenant)) == 1, timeout=15, what="the first reply stored")
        proxy.down()
        for n in range(3):
            sim.inject_mo("8613800005555", f"10690{ext}", f"during {n}")
            time.sleep(4)  # 12 s in all: past the listener's 10 s channel refresh
        sim.drop_connections()  # and its bind breaks meanwhile: it rebinds without the database
        time.sleep(3)
        sim.inject_mo("8613800005555", f"10690{ext}", "during rebind")
        wait_for(
            lambda: sim.mo_sent >= 5 and all(d.status is not None for d in sim.delivered),
            timeout=15,
            what="every reply answered",
        )
        assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.poll() is not None else ""
        assert sim.deliver_nacked == 0
        proxy.up()
        wait_for(
            lambda: len(_replies(tenant)) == 5,
            timeout=20,
            what="the spooled replies stored",
            describe=lambda: _replies(tenant),
        )
        time.sleep(2)
        texts = [t for _, t in _replies(tenant)]
        assert sorted(texts) == sorted(["before", "during 0", "during 1", "during 2", "during rebind"])
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        proxy.close()
