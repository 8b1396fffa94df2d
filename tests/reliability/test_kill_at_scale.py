"""SIGKILL of the delivery worker process mid-batch, at scale (R-DLV-3, R-BIL-2). The size is
FAULT_KILL_MESSAGES (300 in `make test`; bench/bench_faults.py runs 10,000). The worker is
killed twice; after each kill the sweeps run (stale submissions → unknown, reconciled against
the receipts the SMSC redelivers to the next bind; stale queued → queued again; stored receipts
applied) and a new worker takes over. The channel has a TPS limit (150/s): the senders claim
only after they hold a bind, and only about a second of sending at a time (issue 7: with the
limit, whole jobs claimed while waiting were stranded as unknown and nothing was left to send). Witness: the simulator's list of received submit_sm."""

import os
import signal
import tempfile
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

from billing.models import Hold
from delivery.inbound import apply_pending_receipts
from delivery.models import Message, MessageStatus, PendingReceipt
from delivery.outbox import relay_outbox, requeue_stale_queued
from delivery.sweeps import mark_stale_submissions, reconcile_unknown_submissions

from ..delivery.flow.conftest import PRICE, make_sendable
from ..delivery.flow.live import live_tenant, only_channel, signal_group, statuses, wait_for, worker_process

S = MessageStatus
pytestmark = pytest.mark.faults


# Jobs of 50 here too (the relay and requeue run in this process): with the default of 250 one
# thread claimed most of the batch before the first kill and too little was left to reach the
# second kill's target.
@override_settings(DELIVERY_JOB_SIZE=50)
def test_worker_sigkilled_twice_mid_batch_loses_nothing_and_sends_nothing_twice(
    live_db, smsc_factory, listener, figure
):
    import dramatiq

    import smsplatform.worker  # noqa: F401

    total = int(os.environ.get("FAULT_KILL_MESSAGES", "300"))
    dramatiq.get_broker().client.flushdb()
    sim = smsc_factory(credentials={"demo": "demo"}, max_redeliveries=1000, redeliver_delay=0.5)
    channel = only_channel(port=sim.port, window_size=10, tps_limit=150)
    listener(channel.pk)
    tenant, client = live_tenant("Kill Scale Co.")
    template = make_sendable(tenant, balance=total * PRICE)
    ids = []
    for start in range(0, total, 1000):
        numbers = [f"+86155{n:08d}" for n in range(start, min(total, start + 1000))]
        response = client.post(
            "/api/v1/batches",
            {"signature": "DemoShop", "template": template, "params": {"code": "1234"}, "recipients": numbers},
            format="json",
        )
        assert response.status_code == 202
        ids += [m["id"] for m in response.json()["messages"]]
    log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)  # noqa: SIM115
    kills, in_flight = 0, []
    worker = None
    try:
        for fraction in (0.25, 0.6):
            worker = worker_process(log=log, threads=2, env={"DELIVERY_JOB_SIZE": "50"})
            relay_outbox()
            target = int(total * fraction)
            wait_for(
                lambda t=target: len(sim.submitted) >= t,
                timeout=120,
                what=f"{target} submits",
                describe=lambda: _diagnose(tenant, ids, sim),
            )
            signal_group(worker, signal.SIGKILL)
            worker.wait(timeout=10)
            kills += 1
            time.sleep(0.5)
            with override_settings(DELIVERY_SUBMITTING_STALE_SECONDS=0):
                in_flight.append(mark_stale_submissions())
            requeue_stale_queued(older_than=timedelta(0))
        worker = worker_process(log=log, threads=2, env={"DELIVERY_JOB_SIZE": "50"})

        def settled():
            apply_pending_receipts()  # the periodic sweep: receipts a killed worker stored but never applied
            states = statuses(tenant, ids)
            return all(s in (S.DELIVERED, S.UNKNOWN_SUBMISSION) for s in states.values()) and states

        states = wait_for(
            settled,
            timeout=max(120, total / 20),
            every=0.5,
            what="delivered or awaiting reconciliation",
            describe=lambda: _diagnose(tenant, ids, sim),
        )
        unknown = [pk for pk, s in states.items() if s == S.UNKNOWN_SUBMISSION]
        with tenant_context(tenant):
            unknown_numbers = {
                n.lstrip("+") for n in Message.objects.filter(pk__in=unknown).values_list("recipient", flat=True)
            }
        connection.set_schema_to_public()
        reached = unknown_numbers & {r.destination for r in sim.submitted}
        wait_for(
            lambda: (
                set(PendingReceipt.objects.filter(source_addr__in=reached).values_list("source_addr", flat=True))
                >= reached
            ),
            timeout=60,
            what="receipts of the killed workers' submits (redelivered to the listener)",
            describe=lambda: _diagnose(tenant, ids, sim) + f" missing={_missing_receipts(reached, sim)}",
        )
        with override_settings(DELIVERY_UNKNOWN_POLICY={"default": ("resend", 0)}):
            reconcile_unknown_submissions()
        wait_for(
            lambda: set(statuses(tenant, ids).values()) == {S.DELIVERED},
            timeout=max(120, total / 20),
            every=0.5,
            what="all delivered",
            describe=lambda: _diagnose(tenant, ids, sim),
        )
    finally:
        if worker is not None:
            signal_group(worker, signal.SIGTERM)
            worker.wait(timeout=30)
    with tenant_context(tenant):
        hold_ids = list(Message.objects.filter(pk__in=ids).values_list("hold_id", flat=True))
        ours = {n.lstrip("+") for n in Message.objects.filter(pk__in=ids).values_list("recipient", flat=True)}
    connection.set_schema_to_public()
    sent = Counter(r.destination for r in sim.submitted if r.destination in ours)
    holds = Counter(Hold.objects.filter(pk__in=hold_ids).values_list("state", flat=True))
    scale = (
        f"{total} messages, worker SIGKILLed {kills}× mid-batch; in flight at the kills: "
        f"{'+'.join(map(str, in_flight))} (unknown until reconciled)"
    )
    figure("messages lost (worker SIGKILL)", total - len(sent), scale=scale)
    figure("messages submitted twice (worker SIGKILL)", sum(c - 1 for c in sent.values()), scale=scale)
    figure("messages charged twice or not at all (worker SIGKILL)", total - holds["captured"], scale=scale)
    figure(
        "messages stuck in a non-final state after recovery (worker SIGKILL)",
        sum(1 for s in statuses(tenant, ids).values() if s != S.DELIVERED),
        scale=scale,
    )
    assert len(sent) == total
    assert max(sent.values()) == 1
    assert holds == {"captured": total}


def _diagnose(tenant, ids, sim) -> str:
    """What a stalled run looks like: message states, broker queues, simulator counts."""
    import dramatiq

    client = dramatiq.get_broker().client
    queues = {
        key.decode(): client.llen(key) if client.type(key) == b"list" else client.type(key).decode()
        for key in client.keys("*")
    }
    return f"states={Counter(statuses(tenant, ids).values())} queues={queues} submitted={len(sim.submitted)}"


def _missing_receipts(reached, sim) -> str:
    stored = set(PendingReceipt.objects.filter(source_addr__in=reached).values_list("source_addr", flat=True))
    missing = reached - stored
    sent = [r for r in sim.delivered if r.kind == "receipt"]
    retry = {k: len(v) for k, v in sim._retry_queue.items()}
    return f"{len(missing)} of {len(reached)}; simulator receipts sent={len(sent)} retry_queue={retry} connections={len(sim._connections)}"
