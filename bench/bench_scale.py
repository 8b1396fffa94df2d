"""What one more process buys, and what many tenants cost (issue 16, item 4).

    DATABASE_URL=... DRAMATIQ_BROKER_URL=redis://... .venv/bin/python bench/bench_scale.py [messages] [tenants]

Table 1, 1 / 2 / 4 processes: intake (that many processes calling the accept service with batches
of 1,000, as gunicorn workers would) and end to end (`dramatiq smsplatform.worker -p N -t 4`:
accepted → relay → claim → submit → capture → receipt stored), ratio to one process.

Table 2, 10 vs `tenants` (default 1,000) tenants: the same number of messages spread over that
many tenant schemas (each tenant's messages are its own jobs and its own `SET search_path`),
delivered end to end by 2 worker processes; plus the time /metrics takes to count the backlog of
that many active tenants. The bench tenants are reused by later runs (creating one costs ~100 ms),
and their messages are inserted as the accept path leaves them (no holds), so only the delivery
side is measured.

Table 2 with intake: the messages of each tenant step go through the accept path (one batch
request per tenant, one process) and those same messages are then delivered; `--no-tenant-intake`
inserts them as accepted rows instead (no per-tenant signature/template setup, delivery only).

    bench_scale.py 2000 1000 --processes 1,2,4    # both tables (the default)
    bench_scale.py 2000 0                         # the process table only
    bench_scale.py 2000 1000 --processes ''       # the tenant table only

The 4-process step that "delivered nothing" (first run, 2026-11-30) was the bench: its one intake
tenant had accepted over 10,000 messages that hour (steps and reruns), a volume spike by R-CMP-8,
so the compliance gate held every later message for review (status `held`; nothing to relay).
The bench tenant's spike multiple is now set far above the bench volume, and a step that falls
short prints where its messages are (status counts) and the workers' error lines.

The simulator runs in a process of its own, as in bench_e2e.py. Other channels are disabled while
it runs and restored after.
"""

import multiprocessing
import os
import signal
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _setup import setup_django

setup_django()

import dramatiq  # noqa: E402
from bench_e2e import free_port, run_simulator, start_workers  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

import smsplatform.worker  # noqa: E402,F401  (imports every actor)
from billing import services as billing  # noqa: E402
from billing.models import Price  # noqa: E402
from compliance import services as compliance  # noqa: E402
from delivery import actors, channels, intake  # noqa: E402
from delivery.models import Channel, Message, OutboxEntry, Route, SendRequest  # noqa: E402
from smsplatform.metrics import exposition  # noqa: E402
from tenants import registration  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.models import Tenant  # noqa: E402

ACTOR = tenant_services.Actor.system("bench")
PRICE = 35_000
THREADS = 4
#: R-CMP-8 spike multiple of the bench tenants (see intake_tenant)
SPIKE_MULTIPLE = 1_000_000.0


def ensure_price() -> None:
    """A notification price in force (announce_price needs the 7-day notice of R-BIL-4)."""
    plan = billing.default_plan()
    if not Price.objects.filter(plan=plan, message_type="notification", country="CN").exists():
        announced = timezone.now() - timedelta(days=8)
        Price.objects.create(
            plan=plan,
            message_type="notification",
            country="CN",
            unit_price=PRICE,
            effective_from=announced,
            announced_at=announced,
            announced_by="bench",
        )


def bench_tenant(name: str) -> Tenant:
    tenant = Tenant.objects.filter(name=name).first()
    if tenant is None:
        tenant = registration.register_tenant(
            name=name,
            licence_number=f"BSCALE{abs(hash(name)) % 10**10:010d}{len(name)}",
            contact_name="b",
            contact_phone="+8613800000000",
            contact_email="b@example.com",
            actor=ACTOR,
            activate=True,
        )
        connection.set_schema_to_public()
    return tenant


def intake_tenant(count: int) -> tuple[Tenant, str]:
    """One sendable tenant (approved signature + template, money for `count` messages)."""
    tenant = bench_tenant("Bench Scale Intake")
    # This one tenant sends every step's messages, run after run: 12,000 in an hour were a volume
    # spike by R-CMP-8 (10 × max(usual hour, 1,000)), and every message after it was `held` for
    # review, so the 4-process step delivered nothing (found 2026-11-30). The bench is not
    # testing the spike rule: its tenant's multiple is set far above any bench volume.
    from compliance.services.options import settings_for, update_compliance_settings

    if (settings_for(tenant=tenant).spike_multiple or 0) < SPIKE_MULTIPLE:
        update_compliance_settings(
            tenant=tenant, changes={"spike_multiple": SPIKE_MULTIPLE}, actor=ACTOR, reason="bench volume"
        )
    return tenant, sendable(tenant, count)


def sendable(tenant: Tenant, count: int) -> str:
    """Approve the bench signature and template of `tenant` (once) and top it up for `count`
    messages; returns the template code."""
    from compliance.models import Template

    template = Template.objects.filter(tenant=tenant, name="bench-scale").first()
    if template is None:
        signature = compliance.file_signature(
            tenant=tenant,
            text="ScaleBench",
            purpose="bench",
            actor=ACTOR,
            proofs=[SimpleUploadedFile("p.pdf", b"%PDF-1.4", content_type="application/pdf")],
        )
        compliance.approve_signature(signature=signature, actor=ACTOR, reason="bench")
        template = compliance.file_template(
            tenant=tenant,
            name="bench-scale",
            message_type="notification",
            body="Order ${code} shipped.",
            variables={"code": {"kind": "code"}},
            actor=ACTOR,
        )
        compliance.approve_template_version(version=template.versions.get(), actor=ACTOR)
    billing.topup(tenant=tenant, amount=count * PRICE * 2, actor=ACTOR, idempotency_key=f"bench-scale:{time.time_ns()}")
    connection.set_schema_to_public()
    return template.code


def intake_over_tenants(tenants: list[Tenant], templates: dict[int, str], per_tenant: int, first: int) -> float:
    """Messages/s accepted by one process, one batch request of `per_tenant` recipients per tenant
    (each request in its own tenant schema: SET search_path, the tenant's settings and gate)."""
    started = time.perf_counter()
    accepted = 0
    for ti, tenant in enumerate(tenants):
        with tenant_context(tenant):
            intake.accept_send(
                tenant=tenant,
                actor=ACTOR,
                kind="batch",
                signature="ScaleBench",
                template=templates[tenant.pk],
                recipients=[
                    intake.RecipientInput(number=f"+86137{first + ti * per_tenant + i:08d}") for i in range(per_tenant)
                ],
                params={"code": "4711"},
            )
        accepted += per_tenant
    return accepted / (time.perf_counter() - started)


def _accept_slice(tenant_id: int, template: str, first: int, n: int, start, done) -> None:
    connection.close()
    tenant = Tenant.objects.get(pk=tenant_id)
    start.wait()
    with tenant_context(tenant):
        for offset in range(0, n, 1000):
            recipients = [
                intake.RecipientInput(number=f"+86136{first + offset + i:08d}") for i in range(min(1000, n - offset))
            ]
            intake.accept_send(
                tenant=tenant,
                actor=ACTOR,
                kind="batch",
                signature="ScaleBench",
                template=template,
                recipients=recipients,
                params={"code": "4711"},
            )
    connection.close()
    done.put(n)


def intake_rate(tenant: Tenant, template: str, count: int, processes: int, first: int) -> float:
    """Messages/s accepted by `processes` processes at once (each its own slice of recipients)."""
    ctx = multiprocessing.get_context("fork")
    start, done = ctx.Event(), ctx.Queue()
    connection.close()
    share = count // processes
    procs = [
        ctx.Process(target=_accept_slice, args=(tenant.pk, template, first + i * share, share, start, done))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every child has set Django up and waits
    t = time.perf_counter()
    start.set()
    accepted = sum(done.get(timeout=600) for _ in procs)
    elapsed = time.perf_counter() - t
    for p in procs:
        p.join(30)
    return accepted / elapsed


def backlog_done(schemas: list[str]) -> int:
    """Delivered messages over the bench schemas."""
    return backlog_by_status(schemas, only="delivered").get("delivered", 0)


def backlog_by_status(schemas: list[str], only: str | None = None) -> dict[str, int]:
    """{status: messages} over the bench schemas (`only`: that status alone)."""
    quote = connection.ops.quote_name
    table = quote(Message._meta.db_table)
    where = "WHERE status = %s" if only else ""
    totals: dict[str, int] = {}
    for i in range(0, len(schemas), 100):  # 1,000 schemas in one statement exhaust the lock table
        chunk = schemas[i : i + 100]
        sql = " UNION ALL ".join(
            f"SELECT status, count(*) FROM {quote(s)}.{table} {where} GROUP BY status" for s in chunk
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [only] * len(chunk) if only else None)
            for status, n in cursor.fetchall():
                totals[status] = totals.get(status, 0) + n
    return totals


def deliver(schemas: list[str], count: int, processes: int) -> float:
    """Start the workers, wait until `count` more messages of `schemas` are delivered: msgs/s."""
    before = backlog_done(schemas)
    log = tempfile.NamedTemporaryFile(prefix="bench-scale-worker-", suffix=".log", delete=False)  # noqa: SIM115
    workers = start_workers(processes, THREADS, log)
    started = time.perf_counter()
    deadline = started + max(120, count / 20)
    try:
        while time.perf_counter() < deadline:
            if backlog_done(schemas) - before >= count:
                break
            time.sleep(0.2)
        finished = time.perf_counter()
        delivered = backlog_done(schemas) - before
    finally:
        os.killpg(workers.pid, signal.SIGTERM)
        workers.wait(timeout=60)
    if delivered < count:
        # Say why, not only that: where the messages are and what the workers logged.
        errors = [line for line in Path(log.name).read_text().splitlines() if "ERROR" in line or "Error" in line]
        print(
            f"warning: only {delivered}/{count} delivered in time with {processes} process(es); messages by status "
            f"{backlog_by_status(schemas)}; worker log {log.name}: {len(errors)} error lines, last: {errors[-5:]}",
            file=sys.stderr,
        )
    return delivered / (finished - started)


def insert_accepted(tenants: list[Tenant], per_tenant: int, stamp: int) -> None:
    """Messages as the accept path leaves them (accepted, one outbox entry per tenant), relayed
    through the real fast-path actor."""
    now = timezone.now()
    entries = []
    for ti, tenant in enumerate(tenants):
        with tenant_context(tenant):
            request = SendRequest.objects.create(kind="batch", body_hash=f"bench-{stamp}", total=per_tenant)
            messages = Message.objects.bulk_create(
                [
                    Message(
                        request=request,
                        recipient=f"+86135{(stamp % 1000) * 100000 + ti * per_tenant + i:08d}",
                        country="CN",
                        carrier="china_mobile",
                        message_type="notification",
                        content="【ScaleBench】Order 4711 shipped.",
                        encoding="gsm7",
                        segments=1,
                        status="accepted",
                        status_at=now,
                    )
                    for i in range(per_tenant)
                ]
            )
        entries.append(
            OutboxEntry(tenant=tenant, request_id=request.pk, message_ids=[m.pk for m in messages], available_at=now)
        )
    connection.set_schema_to_public()
    for entry in OutboxEntry.objects.bulk_create(entries):
        actors.relay_outbox_entry_job.send(entry.pk)


def bench_channel(port: int) -> Channel:
    channel = Channel.objects.filter(name="bench-scale").first()
    if channel is None:
        channel = channels.create_channel(
            actor=ACTOR,
            name="bench-scale",
            host="127.0.0.1",
            port=port,
            system_id="bench",
            password="bench",
            source_addr="10690",
        )
        Route.objects.create(name="bench-scale", channel=channel, priority=0)
    Channel.objects.filter(pk=channel.pk).update(
        port=port, bind_count=THREADS, window_size=50, tps_limit=None, enabled=True, down_until=None
    )
    return channel


def main(count: int, many: int, steps: tuple[int, ...] = (1, 2, 4), tenant_intake: bool = True) -> None:
    from smsplatform.tenancy import ensure_template_schema
    from tenants.management.commands.bootstrap import ensure_public_tenant

    # No migrate_schemas here (make bench runs bootstrap first): with the 1,000 bench tenants it
    # walks every schema for minutes.
    ensure_template_schema()
    ensure_public_tenant()
    ensure_price()
    stamp = int(time.time())
    port = free_port()
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    report_out, report_in = ctx.Pipe(duplex=False)
    connection.close()
    sim = ctx.Process(target=run_simulator, args=(port, ready, stop, report_in), daemon=True)
    sim.start()
    ready.wait(10)
    others = list(Channel.objects.filter(enabled=True).exclude(name="bench-scale").values_list("pk", flat=True))
    Channel.objects.filter(pk__in=others).update(enabled=False)
    channel = bench_channel(port)
    rows1, rows2 = [], []
    try:
        dramatiq.get_broker().client.flushdb()
        if steps:
            tenant, template = intake_tenant(count * len(steps))
        base_intake = base_e2e = None
        for i, processes in enumerate(steps):
            first = (stamp % 1000) * 100000 + i * count
            intake = intake_rate(tenant, template, count, processes, first)
            e2e = deliver([tenant.schema_name], count, processes)
            base_intake, base_e2e = base_intake or intake, base_e2e or e2e
            rows1 += [
                (f"intake, {processes} process(es)", f"{intake:.0f}", "messages/s", f"× {intake / base_intake:.2f}"),
                (f"end to end, {processes} worker process(es)", f"{e2e:.0f}", "messages/s", f"× {e2e / base_e2e:.2f}"),
            ]
        base = base_intake = None
        for n in (10, many) if many else ():
            tenants = [bench_tenant(f"Bench Scale Tenant {k:04d}") for k in range(n)]
            per_tenant = max(1, count // n)
            schemas = [t.schema_name for t in tenants]
            intake = None
            if tenant_intake:
                # Through the accept path, one batch per tenant; these same messages are then
                # delivered (relay jobs queued by the intake).
                templates = {t.pk: sendable(t, per_tenant) for t in tenants}
                intake = intake_over_tenants(tenants, templates, per_tenant, (stamp % 1000) * 100000 + n)
                base_intake = base_intake or intake
            else:
                insert_accepted(tenants, per_tenant, stamp + n)
            rate = deliver(schemas, per_tenant * n, 2)
            t = time.perf_counter()
            exposition(database=True)
            scrape_ms = (time.perf_counter() - t) * 1000
            base = base or rate
            if intake is not None:
                rows2.append(
                    (
                        f"intake, {per_tenant * n} messages over {n} tenants (one process, a batch per tenant)",
                        f"{intake:.0f}",
                        "messages/s",
                        f"× {intake / base_intake:.2f}",
                    )
                )
            rows2 += [
                (
                    f"end to end, {per_tenant * n} messages over {n} tenants (2 processes)",
                    f"{rate:.0f}",
                    "messages/s",
                    f"× {rate / base:.2f}",
                ),
                (f"/metrics scrape with {n}+ active tenants", f"{scrape_ms:.0f}", "ms", "—"),
            ]
    finally:
        Channel.objects.filter(pk=channel.pk).update(enabled=False)
        Channel.objects.filter(pk__in=others).update(enabled=True)
        stop.set()
        report_out.poll(30)
        sim.join(10)
    if rows1:
        ratio_table(
            f"Scaling with worker processes ({count} messages a step, {THREADS} threads a worker process, 2 cores)",
            rows1,
        )
    if rows2:
        ratio_table(f"Tenant count: per-tenant schema switching ({count} messages)", rows2)


def ratio_table(title: str, rows: list[tuple[str, str, str, str]]) -> str:
    """Like _setup.print_table, the last column being the ratio to the first step."""
    lines = [f"### {title}", "", "| figure | value | unit | ratio to the first |", "|---|---:|---|---|"]
    lines += [f"| {figure} | {value} | {unit} | {ratio} |" for figure, value, unit, ratio in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    return text


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("messages", type=int, nargs="?", default=2000)
    parser.add_argument("tenants", type=int, nargs="?", default=1000, help="the many-tenants step (0: none)")
    parser.add_argument("--processes", default="1,2,4", help="worker process steps ('' : none)")
    parser.add_argument(
        "--no-tenant-intake", action="store_true", help="insert accepted messages instead of the accept path"
    )
    ns = parser.parse_args()
    steps = tuple(int(p) for p in ns.processes.split(",") if p)
    main(ns.messages, ns.tenants, steps, tenant_intake=not ns.no_tenant_intake)
