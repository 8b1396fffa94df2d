"""End-to-end delivery throughput: accepted batches → outbox relay → dramatiq workers (Redis) →
smpplib → SMSC simulator on loopback → submit_sm_resp → capture → receipt stored (delivered).

    DATABASE_URL=... DRAMATIQ_BROKER_URL=redis://... .venv/bin/python bench/bench_e2e.py [messages] [threads] [processes]

As deployed (deploy/compose.yaml): `dramatiq smsplatform.worker -p <processes> -t <threads>`
(default 2 processes, one per core, 4 threads each), the simulator in a process of its own (as in
bench_smpp_raw.py, so the ratio to raw smpplib compares like with like). This process accepts
every batch first; then the workers start, and "accepted → …" runs from the moment they are ready
(relay, claim, submit, capture, receipts) to the last receipt stored. Creates a fresh tenant and a bench channel (bind_count = threads, window 50;
disabled again at the end) in the configured database.
"""

import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from _setup import print_table, setup_django

setup_django()

import dramatiq  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

import smsplatform.worker  # noqa: E402,F401  (imports every actor)
from billing import services as billing  # noqa: E402
from billing.models import Price  # noqa: E402
from compliance import services as compliance  # noqa: E402
from delivery import channels, intake  # noqa: E402
from delivery.models import Channel, Message, Route  # noqa: E402
from delivery.simulator import SmscSimulator  # noqa: E402
from smsplatform.tenancy import ensure_template_schema  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.management.commands.bootstrap import ensure_public_tenant  # noqa: E402

ACTOR = tenant_services.Actor.system("bench")


def prepare(stamp: int):
    from datetime import timedelta

    from django.core.management import call_command

    call_command("migrate_schemas", interactive=False, verbosity=0)
    ensure_template_schema()
    ensure_public_tenant()
    tenant = tenant_services.register_tenant(
        name=f"Bench E2E {stamp}",
        licence_number=f"BENCHE2E{stamp}",
        contact_name="b",
        contact_phone="+8613800000000",
        contact_email="b@example.com",
        actor=ACTOR,
        activate=True,
    )
    connection.set_schema_to_public()
    signature = compliance.file_signature(
        tenant=tenant,
        text="BenchShop",
        purpose="bench",
        actor=ACTOR,
        proofs=[SimpleUploadedFile("p.pdf", b"%PDF-1.4", content_type="application/pdf")],
    )
    compliance.approve_signature(signature=signature, actor=ACTOR)
    template = compliance.file_template(
        tenant=tenant,
        name="bench",
        message_type="notification",
        body="Order ${code} shipped.",
        variables={"code": {"kind": "code"}},
        actor=ACTOR,
    )
    compliance.approve_template_version(version=template.versions.get(), actor=ACTOR)
    plan = billing.default_plan()
    if not Price.objects.filter(plan=plan, message_type="notification", country="CN").exists():
        billing.announce_price(
            plan=plan,
            message_type="notification",
            country="CN",
            unit_price=35_000,
            effective_from=timezone.now() + timedelta(milliseconds=50),
            actor=ACTOR,
        )
        time.sleep(0.1)
    billing.topup(tenant=tenant, amount=10_000 * 1_000_000, actor=ACTOR, idempotency_key=f"bench-e2e:{stamp}")
    return tenant, template.code


def run_simulator(port: int, ready, stop, report) -> None:
    # Fresh carrier ids per run, as a real SMSC's (a run must not look up the ids of earlier runs).
    sim = SmscSimulator(
        "127.0.0.1",
        port,
        credentials={"bench": "bench"},
        receipt_delay=0.0,
        first_message_id=int(time.time() * 1000) << 8,
    )
    sim.start()
    ready.set()
    stop.wait()
    sim.stop()
    destinations = [r.destination for r in sim.submitted]
    report.send((len(destinations), len(set(destinations))))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_workers(processes: int, threads: int, log) -> subprocess.Popen:
    root = Path(__file__).resolve().parent.parent
    command = [
        str(Path(sys.executable).parent / "dramatiq"),
        "smsplatform.worker",
        "-p",
        str(processes),
        "-t",
        str(threads),
    ]
    proc = subprocess.Popen(command, cwd=root, env=dict(os.environ), stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while Path(log.name).read_text().count("Worker process is ready") < processes:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"workers did not start: {Path(log.name).read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def main(count: int, threads: int, processes: int) -> None:
    import signal
    import tempfile

    stamp = int(time.time())
    tenant, template = prepare(stamp)
    port = free_port()
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    report_out, report_in = ctx.Pipe(duplex=False)
    connection.close()  # never share a connection with a forked child
    sim = ctx.Process(target=run_simulator, args=(port, ready, stop, report_in), daemon=True)
    sim.start()
    ready.wait(10)
    # One bench channel, reused run after run: every channel gets a queue (and a consumer thread
    # in each worker), so a new channel per run would slow later runs down.
    channel = Channel.objects.filter(name="bench-e2e").first()
    if channel is None:
        channel = channels.create_channel(
            actor=ACTOR,
            name="bench-e2e",
            host="127.0.0.1",
            port=port,
            system_id="bench",
            password="bench",
            source_addr="10690",
            window_size=50,
            bind_count=threads,
        )
        Route.objects.create(name="bench-e2e", channel=channel, priority=0)
    Channel.objects.filter(pk=channel.pk).update(
        port=port, bind_count=threads, window_size=50, tps_limit=None, enabled=True, down_until=None
    )
    dramatiq.get_broker().client.flushdb()  # nothing left over from an earlier run
    log = tempfile.NamedTemporaryFile(prefix="bench-e2e-worker-", suffix=".log", delete=False)  # noqa: SIM115
    workers = None
    try:
        # Accept everything first (the relay jobs wait in Redis), then start the workers: the
        # delivery figure is the workers' own rate, not diluted or helped by the intake running
        # on the same two cores at the same time.
        accept_times = []
        with tenant_context(tenant):
            for offset in range(0, count, 1000):
                n = min(1000, count - offset)
                recipients = [intake.RecipientInput(number=f"+86138{offset + i:08d}") for i in range(n)]
                t = time.perf_counter()
                intake.accept_send(
                    tenant=tenant,
                    actor=ACTOR,
                    kind="batch",
                    signature="BenchShop",
                    template=template,
                    recipients=recipients,
                    params={"code": "4711"},
                )
                accept_times.append(time.perf_counter() - t)
        workers = start_workers(processes, threads, log)
        queued_at = time.perf_counter()
        deadline = queued_at + max(60, count / 50)
        done = 0
        all_submitted_at = None
        while time.perf_counter() < deadline:
            with tenant_context(tenant):
                counts = dict(Message.objects.values_list("status").annotate(n=Count("pk")).order_by())
            done = counts.get("delivered", 0)
            if all_submitted_at is None and done + counts.get("submitted", 0) >= count:
                all_submitted_at = time.perf_counter()
            if done >= count:
                break
            time.sleep(0.1)  # this count is a scan of the messages: not too often (it shares the cores)
        finished = time.perf_counter()
    finally:
        if workers is not None:
            os.killpg(workers.pid, signal.SIGTERM)
            workers.wait(timeout=60)
        Channel.objects.filter(pk=channel.pk).update(enabled=False)
        stop.set()
        submits, distinct = report_out.recv() if report_out.poll(30) else (-1, -1)
        sim.join(10)
    accept_rate = 1000 * len(accept_times) / sum(accept_times) if accept_times else 0
    print_table(
        f"End-to-end delivery, {count} messages, {processes} worker processes × {threads} threads, "
        "simulator on loopback (own process)",
        [
            ("accept (validate, gate, price, hold, persist)", f"{accept_rate:.0f}", "messages/s", "≥ 1000 messages/s"),
            (
                "accepted → receipt stored (delivered)",
                f"{done / (finished - queued_at):.0f}",
                "messages/s",
                "≥ 2,000 messages/s on 2 cores",
            ),
            (
                "accepted → submitted (carrier accepted, captured)",
                f"{count / ((all_submitted_at or finished) - queued_at):.0f}",
                "messages/s",
                "—",
            ),
            (
                "all steps (accept time + delivery time)",
                f"{done / (sum(accept_times) + finished - queued_at):.0f}",
                "messages/s",
                "—",
            ),
            ("delivered", f"{done}/{count}", "messages", "all"),
            ("submits received by the SMSC", f"{submits}", "PDUs", f"{count} (none twice)"),
            ("submitted twice", f"{submits - distinct}", "messages", "0"),
        ],
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(args[0] if args else 2000, args[1] if len(args) > 1 else 4, args[2] if len(args) > 2 else 2)
