"""Faults the delivery-flow suite (tests/delivery/flow/test_faults.py: link drops, throttling,
SIGKILL of a worker) does not cover, on the real stack (R-DLV-1, R-DLV-3, R-BIL-2):

* a crash between the accept's COMMIT and the publish of its relay job — a real process exit
  right after commit, and the broker unreachable at publish time — repeated many times; the
  periodic sweeper (relay_outbox) sends them: none lost, none sent or charged twice;
* the worker's PostgreSQL connections killed (pg_terminate_backend) again and again mid-batch;
* two tenants' requests and jobs interleaved: no row lands in the other tenant's schema.
"""

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta

import dramatiq
import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

from billing.models import Hold
from delivery import inbound, outbox
from delivery.models import Message, MessageStatus, OutboxEntry, PendingReceipt
from delivery.sweeps import mark_stale_submissions, reconcile_unknown_submissions
from tenants.models import OperationRecord

from ..delivery.flow.conftest import PRICE, make_sendable
from ..delivery.flow.live import ROOT, live_tenant, only_channel, statuses, test_database_url, wait_for

S = MessageStatus
pytestmark = pytest.mark.faults
FINAL = {S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED}

CRASH_SCRIPT = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")
import django
django.setup()
from django.db import transaction
from django_tenants.utils import tenant_context
from delivery import intake
from tenants.models import Tenant
from tenants.services import Actor
tenant = Tenant.objects.get(pk=int(sys.argv[1]))
numbers = sys.argv[3].split(",")
with tenant_context(tenant), transaction.atomic():
    transaction.on_commit(lambda: os._exit(9))  # runs first after COMMIT: the relay job is never published
    intake.accept_send(tenant=tenant, actor=Actor.system("crash"), kind="batch", signature="DemoShop",
                         template=sys.argv[2], recipients=[intake.RecipientInput(number=n) for n in numbers],
                         params={"code": "1234"})
os._exit(0)
"""


def _test_db_env() -> dict:
    return {**os.environ, "DATABASE_URL": test_database_url()}


class BrokerDown:
    """The Redis broker unreachable (its connection pool pointed at a closed port, or at a
    missing socket file for the embedded Redis of `make bench`)."""

    def __enter__(self):
        self.pool = dramatiq.get_broker().client.connection_pool
        kwargs = self.pool.connection_kwargs
        self.key = "path" if "path" in kwargs else "port"
        self.saved = kwargs.get(self.key)
        self.pool.disconnect()
        kwargs[self.key] = "/nonexistent/redis.sock" if self.key == "path" else 1
        return self

    def __exit__(self, *exc):
        self.pool.disconnect()
        self.pool.connection_kwargs[self.key] = self.saved


def sent_and_charged(sim, tenant, ids):
    with tenant_context(tenant):
        rows = list(Message.objects.filter(pk__in=ids).values_list("recipient", "hold_id", "status"))
    connection.set_schema_to_public()
    ours = {recipient.lstrip("+") for recipient, _, _ in rows}
    # only this test's numbers: a leftover job of an earlier live test may fail over to this channel
    sent = Counter(r.destination for r in sim.submitted if r.destination in ours)
    holds = Counter(Hold.objects.filter(pk__in=[h for _, h, _ in rows]).values_list("state", flat=True))
    return sent, rows, holds


def test_crash_between_commit_and_publish_many_times_loses_and_duplicates_nothing(
    live_db, smsc_factory, worker, figure, settings
):
    settings.DELIVERY_RETRY_BACKOFF_MS = 100
    sim = smsc_factory(credentials={"demo": "demo"})
    only_channel(port=sim.port)
    tenant, client = live_tenant("Crash Co.")
    template = make_sendable(tenant)
    crashes, broker_down = 4, 30
    for k in range(crashes):  # a real process exit between COMMIT and publish
        numbers = ",".join(f"+86133{k:02d}{n:06d}" for n in range(5))
        run = subprocess.run(
            [sys.executable, "-c", CRASH_SCRIPT, str(tenant.pk), template, numbers],
            cwd=ROOT,
            env=_test_db_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 9, run.stderr[-2000:]
    with BrokerDown():  # the publish fails after COMMIT; the request still succeeds (202)
        for k in range(broker_down):
            response = client.post(
                "/api/v1/batches",
                {
                    "signature": "DemoShop",
                    "template": template,
                    "params": {"code": "1234"},
                    "recipients": [f"+86134{k:02d}{n:06d}" for n in range(3)],
                },
                format="json",
            )
            assert response.status_code == 202, response.content[:300]
    with tenant_context(tenant):
        ids = list(Message.objects.values_list("pk", flat=True))
    connection.set_schema_to_public()
    expected = crashes * 5 + broker_down * 3
    assert len(ids) == expected
    unpublished = OutboxEntry.objects.filter(tenant=tenant, relayed_at__isnull=True).count()
    assert unpublished == crashes + broker_down  # every one of them committed and was never published
    worker()
    outbox.relay_outbox()  # the periodic sweeper (relay_due_outbox, every 5 s), run now
    outbox.relay_outbox()  # … and again: nothing is relayed twice
    wait_for(
        lambda: set(statuses(tenant, ids).values()) == {S.DELIVERED},
        timeout=90,
        what="all delivered",
        describe=lambda: Counter(statuses(tenant, ids).values()),
    )
    sent, rows, holds = sent_and_charged(sim, tenant, ids)
    scale = f"{crashes} process exits after COMMIT + {broker_down} publishes with the broker down, {expected} messages"
    figure("messages lost (crash between commit and publish)", expected - len(sent), scale=scale)
    figure(
        "messages submitted twice (crash between commit and publish)", sum(c - 1 for c in sent.values()), scale=scale
    )
    figure("messages charged twice (crash between commit and publish)", len(rows) - holds["captured"], scale=scale)
    assert len(sent) == expected
    assert max(sent.values()) == 1
    assert holds == {"captured": expected}


def test_worker_database_connections_killed_mid_batch(live_db, smsc_factory, worker, figure, settings):
    """pg_terminate_backend on every other backend of the test database, five times while a
    batch is being submitted; the sweeps then finish the work. Nothing lost, nothing twice."""
    settings.DELIVERY_RETRY_BACKOFF_MS = 100
    # As a real SMSC: a receipt refused with a transient error is offered again for a long time.
    sim = smsc_factory(credentials={"demo": "demo"}, max_redeliveries=1000, redeliver_delay=0.5)
    only_channel(port=sim.port, window_size=5, tps_limit=100)
    tenant, client = live_tenant("Pg Kill Co.")
    template = make_sendable(tenant)
    worker(threads=2)
    numbers = [f"+86152{n:08d}" for n in range(300)]
    ids = []
    for chunk in range(0, len(numbers), 100):
        response = client.post(
            "/api/v1/batches",
            {
                "signature": "DemoShop",
                "template": template,
                "params": {"code": "1234"},
                "recipients": numbers[chunk : chunk + 100],
            },
            format="json",
        )
        assert response.status_code == 202
        ids += [m["id"] for m in response.json()["messages"]]
    killed = 0
    wait_for(lambda: len(sim.submitted) >= 20, timeout=60, what="the batch to be under way")
    for _ in range(5):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            killed += cursor.fetchone()[0]
        time.sleep(0.4)
    assert killed >= 1

    def quiet():  # the periodic sweeps that are safe at any time, run now
        outbox.requeue_stale_queued(older_than=timedelta(seconds=2))
        outbox.relay_outbox()
        # Receipts stored while a killed connection lost their in-job apply wait for this sweep
        # (apply_pending_receipts_job, every 15 s in production).
        inbound.apply_pending_receipts()
        connection.set_schema_to_public()
        return set(statuses(tenant, ids).values()) <= FINAL | {S.SUBMITTING, S.UNKNOWN_SUBMISSION}

    wait_for(
        quiet,
        timeout=120,
        every=1.0,
        what="no message queued any more",
        describe=lambda: Counter(statuses(tenant, ids).values()),
    )
    time.sleep(3)
    # Submissions whose result could not be recorded (their connection died): unknown until a
    # receipt proves them sent, or the reconcile window passes (here: once every receipt the SMSC
    # owes has arrived — the SMSC redelivers those our listener refused while the DB was down).
    with override_settings(DELIVERY_SUBMITTING_STALE_SECONDS=2):
        mark_stale_submissions()
    unknown = [pk for pk, s in statuses(tenant, ids).items() if s == S.UNKNOWN_SUBMISSION]
    with tenant_context(tenant):
        unknown_numbers = {
            n.lstrip("+") for n in Message.objects.filter(pk__in=unknown).values_list("recipient", flat=True)
        }
    connection.set_schema_to_public()
    reached = unknown_numbers & {r.destination for r in sim.submitted}
    wait_for(
        lambda: (
            set(PendingReceipt.objects.filter(source_addr__in=reached).values_list("source_addr", flat=True)) >= reached
        ),
        timeout=60,
        what="receipts of the submissions whose results were lost",
    )
    with override_settings(DELIVERY_UNKNOWN_POLICY={"default": ("resend", 0)}):
        reconcile_unknown_submissions()

    def settled():
        outbox.requeue_stale_queued(older_than=timedelta(seconds=2))
        return set(statuses(tenant, ids).values()) <= FINAL

    wait_for(
        settled,
        timeout=120,
        every=1.0,
        what="every message final",
        describe=lambda: Counter(statuses(tenant, ids).values()),
    )
    sent, rows, holds = sent_and_charged(sim, tenant, ids)
    scale = (
        f"{len(ids)} messages, {killed} backends terminated in 5 rounds; "
        f"{len(unknown)} results lost, {len(reached)} of them proven sent by their receipt"
    )
    twice = sum(c - 1 for c in sent.values())
    figure("messages lost (PostgreSQL connections killed)", len(ids) - len(sent), scale=scale)
    figure("messages submitted twice (PostgreSQL connections killed)", twice, scale=scale)
    figure(
        "messages stuck in a non-final state after recovery (PostgreSQL killed)",
        sum(1 for _, _, s in rows if s not in FINAL),
        scale=scale,
    )
    assert len(sent) == len(ids)
    assert twice == 0
    assert {s for _, _, s in rows} == {S.DELIVERED}
    assert holds == {"captured": len(ids)}


def test_two_tenants_interleaved_never_write_in_each_others_schema(live_db, smsc_factory, worker, figure):
    """R-TEN-1: 2 tenants × 4 API threads interleaved with the worker's jobs for both; every
    message, status event, hold and operation record lands with its own tenant."""
    sim = smsc_factory(credentials={"demo": "demo"})
    only_channel(port=sim.port)
    worker(threads=4)
    tenants = []
    for name, prefix in (("Interleave A", "131"), ("Interleave B", "132")):
        tenant, client = live_tenant(name)
        tenants.append((tenant, client, prefix, make_sendable(tenant, balance=10_000 * PRICE)))
    errors = []

    def run(tenant, client, prefix, template, t):
        from ..conftest import KeyedClient

        mine = KeyedClient(tenant, client.key_id, client.secret)
        try:
            for r in range(10):
                if r % 2:
                    body = {
                        "signature": "DemoShop",
                        "template": template,
                        "params": {"code": "1234"},
                        "recipients": [f"+86{prefix}{t}{r:02d}{k:05d}" for k in range(5)],
                    }
                    response = mine.post("/api/v1/batches", body, format="json")
                else:
                    response = mine.post(
                        "/api/v1/messages",
                        {
                            "signature": "DemoShop",
                            "template": template,
                            "params": {"code": "1234"},
                            "to": f"+86{prefix}{t}{r:02d}99999",
                        },
                        format="json",
                    )
                if response.status_code != 202 or response.json().get("rejected"):
                    errors.append(response.content[:200])
                mine.get("/api/v1/messages")
                mine.get("/api/v1/billing/balance")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(*tenants[i % 2], i // 2)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    per_tenant = 4 * (5 * 1 + 5 * 5)
    wrong = 0
    for tenant, _client, prefix, _template in tenants:
        ids = list(statuses(tenant))
        assert len(ids) == per_tenant
        wait_for(lambda t=tenant, i=ids: set(statuses(t, i).values()) == {S.DELIVERED}, timeout=90, what="delivered")
        with tenant_context(tenant):
            wrong += Message.objects.exclude(recipient__startswith=f"+86{prefix}").count()
            hold_ids = list(Message.objects.values_list("hold_id", flat=True))
        connection.set_schema_to_public()
        wrong += Hold.objects.filter(pk__in=hold_ids).exclude(tenant=tenant).count()
        wrong += Hold.objects.filter(tenant=tenant).exclude(reference__startswith=f"{tenant.schema_name}:").count()
        wrong += (
            OperationRecord.objects.filter(action__startswith="delivery.send", tenant=tenant)
            .exclude(object_id__in=[str(pk) for pk in _request_ids(tenant)])
            .count()
        )
    figure(
        "rows written in the wrong tenant schema",
        wrong,
        unit="rows",
        scale=f"2 tenants × 4 API threads × 10 requests + worker jobs, {2 * per_tenant} messages",
    )
    assert wrong == 0


def _request_ids(tenant) -> list[int]:
    from delivery.models import SendRequest

    with tenant_context(tenant):
        ids = list(SendRequest.objects.values_list("pk", flat=True))
    connection.set_schema_to_public()
    return ids
