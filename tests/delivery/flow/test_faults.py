"""Fault injection on the real stack (R-DLV-3, R-BIL-2): the simulator drops the link mid-batch,
throttles, and a worker process is killed with SIGKILL mid-batch. In every case: no message lost,
none charged twice, none submitted twice (the simulator's received list is the witness)."""

import signal
import tempfile
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

from delivery.models import Message, MessageStatus, PendingReceipt
from delivery.outbox import requeue_stale_queued
from delivery.sweeps import mark_stale_submissions, reconcile_unknown_submissions

from .conftest import PRICE, make_sendable
from .live import live_tenant, only_channel, signal_group, statuses, wait_all_delivered, wait_for, worker_process

S = MessageStatus
pytestmark = pytest.mark.faults


def send_batch(client, template, numbers):
    response = client.post(
        "/api/v1/batches",
        {
            "signature": "DemoShop",
            "template": template,
            "params": {"code": "135790"},
            "recipients": numbers,
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert response.json()["rejected"] == 0
    return [m["id"] for m in response.json()["messages"]]


def assert_each_sent_once_and_charged_once(sim, tenant, numbers, ids, *, balance=100_000_000):
    from billing.models import Hold
    from billing.selectors import balance_of

    sent = Counter(r.destination for r in sim.submitted)
    assert set(sent) == {n.lstrip("+") for n in numbers}
    assert max(sent.values()) == 1, [d for d, c in sent.items() if c > 1]
    with tenant_context(tenant):
        hold_ids = list(Message.objects.filter(pk__in=ids).values_list("hold_id", flat=True))
    connection.set_schema_to_public()
    assert Counter(Hold.objects.filter(pk__in=hold_ids).values_list("state", flat=True)) == {"captured": len(ids)}
    assert balance_of(tenant=tenant) == balance - len(ids) * PRICE


def numbers_for(prefix: str, n: int) -> list[str]:
    return [f"+86{prefix}{i:08d}" for i in range(n)]


def test_simulator_disconnects_mid_batch(live_db, smsc_factory, worker, settings):
    """Issue 10: a submit whose answer the drop lost is unknown, not refused: it waits for
    evidence (none comes: this SMSC dropped it unaccepted) and is resent after its window."""
    settings.DELIVERY_RETRY_BACKOFF_MS = 100
    settings.DELIVERY_UNKNOWN_POLICY = {"default": ("resend", 1)}
    sim = smsc_factory(credentials={"demo": "demo"}, disconnect_every=7)
    only_channel(port=sim.port)
    tenant, client = live_tenant("Disconnect Co.")
    template = make_sendable(tenant)
    worker()
    numbers = numbers_for("138", 30)
    ids = send_batch(client, template, numbers)
    wait_all_delivered(tenant, ids, sweep=True)
    assert sim.disconnects >= 3
    assert_each_sent_once_and_charged_once(sim, tenant, numbers, ids)


def test_simulator_throttles(live_db, smsc_factory, worker, settings):
    settings.DELIVERY_RETRY_BACKOFF_MS = 100
    sim = smsc_factory(credentials={"demo": "demo"}, throttle_every=4)
    only_channel(port=sim.port)
    tenant, client = live_tenant("Throttle Co.")
    template = make_sendable(tenant)
    worker()
    numbers = numbers_for("139", 20)
    ids = send_batch(client, template, numbers)
    wait_all_delivered(tenant, ids)
    assert sim.throttled >= 4
    assert_each_sent_once_and_charged_once(sim, tenant, numbers, ids)


def test_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(live_db, smsc_factory, listener, settings):
    """SIGKILL between submit and commit: claimed rows become unknown_submission, are matched to
    their receipts (sent) or, with no receipt, queued again (never sent) — see docs/delivery.md."""
    import dramatiq

    import smsplatform.worker  # noqa: F401

    dramatiq.get_broker().client.flushdb()
    sim = smsc_factory(credentials={"demo": "demo"})
    channel = only_channel(port=sim.port, window_size=5, tps_limit=40)  # slow enough to be killed mid-batch
    listener(channel.pk)
    tenant, client = live_tenant("Kill Co.")
    template = make_sendable(tenant)
    numbers = numbers_for("150", 120)
    log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)  # noqa: SIM115
    first = worker_process(log=log, env={"DELIVERY_JOB_SIZE": "30"})
    try:
        ids = send_batch(client, template, numbers)
        wait_for(lambda: len(sim.submitted) >= 25, timeout=60, what="the first worker to be mid-batch")
        signal_group(first, signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = len(sim.submitted)
        assert killed_at < len(numbers)
        # Let the SMSC notice the dead binds: the receipts it could not deliver wait for the next
        # bind of the account (the second worker's), as a real SMSC keeps them for redelivery.
        time.sleep(0.5)

        # The sweeps of the periodic jobs, run now instead of after their production delays.
        settings.DELIVERY_SUBMITTING_STALE_SECONDS = 0
        time.sleep(0.05)
        assert mark_stale_submissions() >= 1
        requeue_stale_queued(older_than=timedelta(0))
        second = worker_process(log=log, env={"DELIVERY_JOB_SIZE": "30"})
        try:

            def settled():
                states = statuses(tenant, ids)
                return all(s in (S.DELIVERED, S.UNKNOWN_SUBMISSION) for s in states.values()) and states

            states = wait_for(
                settled,
                timeout=90,
                what="every message delivered or awaiting reconciliation",
                describe=lambda: Counter(statuses(tenant, ids).values()),
            )
            unknown = [pk for pk, s in states.items() if s == S.UNKNOWN_SUBMISSION]
            with tenant_context(tenant):
                unknown_numbers = set(Message.objects.filter(pk__in=unknown).values_list("recipient", flat=True))
            connection.set_schema_to_public()
            reached_smsc = {n for n in (r.destination for r in sim.submitted) if "+" + n in unknown_numbers}
            # wait until the receipts of those the SMSC did take have arrived (on the listener's bind)
            wait_for(
                lambda: (
                    set(
                        PendingReceipt.objects.filter(source_addr__in=reached_smsc).values_list(
                            "source_addr", flat=True
                        )
                    )
                    == reached_smsc
                ),
                timeout=30,
                what="receipts of the killed worker's submits",
                describe=lambda: (
                    reached_smsc - set(PendingReceipt.objects.values_list("source_addr", flat=True)),
                    len(sim.delivered),
                    sim.receipts_sent,
                    sim.deliver_acked,
                    sim.deliver_nacked,
                    [(c.closed, c.can_receive, len(c.unacked)) for c in list(sim._connections)],
                ),
            )
            with override_settings(DELIVERY_UNKNOWN_POLICY={"default": ("resend", 0)}):
                outcome = reconcile_unknown_submissions()
            assert outcome["reconciled"] == len(reached_smsc)
            assert outcome["requeued"] == len(unknown) - len(reached_smsc)
            wait_all_delivered(tenant, ids, timeout=90)
        finally:
            signal_group(second, signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        signal_group(first, signal.SIGKILL)
    assert_each_sent_once_and_charged_once(sim, tenant, numbers, ids)


def test_a_channel_that_refuses_fails_over_to_the_next_R_DLV_2(live_db, smsc_factory, worker):
    """The first channel refuses the destination (permanent error): the next route delivers it."""
    from delivery.channels import create_channel
    from delivery.models import Route

    from .live import SYSTEM

    refusing = smsc_factory(credentials={"demo": "demo"}, reject_destinations={"8613700000001"})
    good = smsc_factory(credentials={"demo": "demo"})
    first = only_channel(port=refusing.port)
    second = create_channel(
        actor=SYSTEM,
        name=f"second-{first.pk}",
        host="127.0.0.1",
        port=good.port,
        system_id="demo",
        password="demo",
        source_addr="10690",
    )
    Route.objects.create(name=f"backup-{second.pk}", channel=second, priority=50)
    tenant, client = live_tenant("Failover Co.")
    template = make_sendable(tenant)
    worker()
    ids = send_batch(client, template, ["+8613700000001", "+8613700000002"])
    wait_all_delivered(tenant, ids)
    assert [r.destination for r in refusing.submitted] == ["8613700000002"]
    assert [r.destination for r in good.submitted] == ["8613700000001"]
