"""End-to-end delivery throughput: accepted batches → outbox relay → dramatiq workers (Redis) →
smpplib → SMSC simulator on loopback → submit_sm_resp → capture → receipt stored (delivered).

    DATABASE_URL=... DRAMATIQ_BROKER_URL=redis://... .venv/bin/python bench/bench_e2e.py [messages] [threads] [processes] [--parts 3]

`--parts 3`: every message is 3 SMS parts (UCS-2, 3 × 67 units: 3 submit_sm and 3 receipts a
message); the rates are then messages/s and parts/s (issue 16: the e2e ratio for long messages).

The ratio of issue 16 is printed by this bench: raw smpplib (window 50, bench_smpp_raw.bench_raw)
runs against this run's own simulator right before the workers start and right after they stop,
and "e2e ÷ raw smpplib, same run" divides the delivered parts/s by the mean of the two, each the
median of 3 runs (on a shared machine the load changes within a minute; a ratio to a separate
bench run was noise).
No migrate_schemas unless `--migrate` (make bench runs bootstrap first).

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
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _setup import cpu_seconds, print_table, setup_django

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
from delivery.simulator.server import SmscSimulator  # noqa: E402
from smsplatform.tenancy import ensure_template_schema  # noqa: E402
from tenants import registration  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.management.commands.bootstrap import ensure_public_tenant  # noqa: E402

ACTOR = tenant_services.Actor.system("bench")
#: `--migrate`: migrate every schema first (a database `make bench`'s bootstrap has not prepared)
MIGRATE = "--migrate" in sys.argv


#: template bodies per parts count; with the 【BenchShop】 signature the text is UCS-2 (70 / 67 a part)
BODIES = {
    1: "Order ${code} shipped.",
    3: "Order ${code} shipped. " + "Your parcel is on its way to the pickup point; bring an ID card. " * 2 + "Thanks!",
}


def prepare(stamp: int, parts: int = 1):
    from datetime import timedelta

    from django.core.management import call_command

    # No migrate_schemas (make bench runs bootstrap first): with bench_scale.py's 1,000 bench
    # tenants it walked every schema for ~10 minutes on the shared machine before the bench began.
    if MIGRATE:
        call_command("migrate_schemas", interactive=False, verbosity=0)
    ensure_template_schema()
    ensure_public_tenant()
    tenant = registration.register_tenant(
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
    # A reason: from the second run on, the signature of the earlier bench tenants is flagged as
    # a possible impersonation, and approving it needs one (make bench reuses the database).
    compliance.approve_signature(signature=signature, actor=ACTOR, reason="bench tenant")
    template = compliance.file_template(
        tenant=tenant,
        name="bench",
        message_type="notification",
        body=BODIES[parts],
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
    # A part is (destination, part number): a long message's parts share the destination. The
    # raw smpplib reference runs (RAW_SOURCE) are not ours.
    parts = [(r.destination, r.udh[2] if r.udh else 1) for r in sim.submitted if r.source != RAW_SOURCE]
    report.send((len(parts), len(set(parts))))


#: source address of the raw smpplib reference runs against this simulator (no channel source +
#: tenant extension of ours starts with it)
RAW_SOURCE = "19999"


def raw_rate(port: int, count: int, runs: int = 3) -> float:
    """Raw smpplib (window 50, as bench_smpp_raw.py) against the e2e run's own simulator, msg/s:
    the median of `runs` runs (a single ~1 s run fell to half its rate whenever the machine's
    other work took a core for a moment, and a low reference inflates the ratio)."""
    from bench_smpp_raw import bench_raw

    n = min(count, 5000)
    return statistics.median(n / bench_raw(port, n, 50, source=RAW_SOURCE)[0] for _ in range(runs))


def statements_reset() -> bool:
    """Zero pg_stat_statements when the database has it (shared_preload_libraries +
    CREATE EXTENSION: not in CI); returns whether it does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if cursor.fetchone() is None:
            return False
        cursor.execute("SELECT pg_stat_statements_reset()")
    return True


def statement_costs(messages: int, top: int = 12) -> list[tuple[str, str, str, str]]:
    """The statements that took PostgreSQL longest since statements_reset(), per message: time in
    the executor (lock waits included) and WAL records (a row or an index entry written each)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT calls, total_exec_time, wal_records, left(regexp_replace(query, '\\s+', ' ', 'g'), 70)"
            " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY total_exec_time DESC LIMIT %s",
            [top],
        )
        return [
            (query.replace("|", "¦"), f"{1000 * ms / messages:.1f}", f"{wal / messages:.1f}", f"{calls}")
            for calls, ms, wal, query in cursor.fetchall()
        ]


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
    # As deployed (deploy/compose.yaml): DEBUG off, so no debug cursor records every statement.
    env = {**os.environ, "DEBUG": os.environ.get("BENCH_WORKER_DEBUG", "false")}
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while Path(log.name).read_text().count("Worker process is ready") < processes:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"workers did not start: {Path(log.name).read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def main(count: int, threads: int, processes: int, parts: int = 1) -> None:
    import signal
    import tempfile

    from smsplatform.sms_text import count_segments

    stamp = int(time.time())
    tenant, template = prepare(stamp, parts)
    text = "【BenchShop】" + BODIES[parts].replace("${code}", "4711")
    assert count_segments(text).segments == parts, (count_segments(text), parts)
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
    cpu_used: dict[str, float] = {}
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
        # The figure is a ratio to raw smpplib in the same run on the same simulator: taken
        # right before and right after the workers run (the shared machine's load drifts).
        raw_before = raw_rate(port, count)
        components = {
            "dramatiq workers": lambda cmd: "smsplatform.worker" in cmd,
            "PostgreSQL": lambda cmd: cmd.startswith("postgres"),
            "SMSC simulator": {sim.pid},
            "Redis": lambda cmd: "redis-server" in cmd,
            "this process (status polling)": {os.getpid()},
        }
        measure_statements = statements_reset()
        workers = start_workers(processes, threads, log)
        cpu_before = cpu_seconds(components)
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
            # This count scans the messages, in the PostgreSQL whose CPU is measured: as rarely as
            # the rate so far allows (up to 1 s apart mid-run, 0.1 s near the end; every 0.1 s
            # it was ~15 % of PostgreSQL's CPU in a 9,000-message run).
            elapsed = time.perf_counter() - queued_at
            left = (count - done) * elapsed / done if done else 1.0
            time.sleep(min(1.0, max(0.1, left / 4)))
        finished = time.perf_counter()
        cpu_used = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds(components).items()}
        statements = statement_costs(max(done, 1)) if measure_statements else []
    finally:
        if workers is not None:
            os.killpg(workers.pid, signal.SIGTERM)
            workers.wait(timeout=60)
            raw_after = raw_rate(port, count)
        Channel.objects.filter(pk=channel.pk).update(enabled=False)
        stop.set()
        submits, distinct = report_out.recv() if report_out.poll(30) else (-1, -1)
        sim.join(10)
    accept_rate = 1000 * len(accept_times) / sum(accept_times) if accept_times else 0
    delivered_rate = done / (finished - queued_at)
    # 3-part runs name their figures apart, so run_all.py can keep both runs in one table.
    tag = "" if parts == 1 else f", {parts}-part messages"
    rows = [
        ("accept (validate, gate, price, hold, persist)", f"{accept_rate:.0f}", "messages/s", "≥ 1000 messages/s"),
        (
            "accepted → receipt stored (delivered)",
            f"{delivered_rate:.0f}",
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
    ]
    if parts > 1:
        rows.append(("accepted → receipt stored, parts", f"{delivered_rate * parts:.0f}", "parts/s", "—"))
    raw = (raw_before + raw_after) / 2
    rows += [
        (
            "raw smpplib, same simulator, window 50 (before / after the workers, median of 3 runs each)",
            f"{raw_before:.0f} / {raw_after:.0f}",
            "msg/s",
            "—",
        ),
        (
            "e2e ÷ raw smpplib, same run (parts/s ÷ msg/s)",
            f"{delivered_rate * parts / raw:.2f}",
            "ratio",
            "≥ 0.40",
        ),
    ]
    rows += [
        ("delivered", f"{done}/{count}", "messages", "all"),
        ("submits received by the SMSC", f"{submits}", "PDUs", f"{count * parts} (none twice)"),
        ("submitted twice", f"{submits - distinct}", "parts", "0"),
    ]
    # Where the cores went (issue 16): CPU seconds per 1,000 messages delivered, by process.
    wall = finished - queued_at
    for name, used in cpu_used.items():
        rows.append((f"CPU, {name}", f"{1000 * used / max(done, 1):.2f}", "s per 1,000 messages", "—"))
    if cpu_used:
        busy = sum(cpu_used.values()) / wall / (os.cpu_count() or 1)
        rows.append(("CPU busy, all of the above", f"{100 * busy:.0f}", f"% of {os.cpu_count()} cores", "—"))
    print_table(
        f"End-to-end delivery, {count} messages of {parts} part(s), {processes} worker processes × {threads} "
        "threads, simulator on loopback (own process)",
        [(figure + tag, *rest) for figure, *rest in rows],
    )
    if statements:  # only where pg_stat_statements is loaded (see statements_reset)
        lines = ["| statement (this bench's status polling included) | µs / message | WAL records / message | calls |"]
        lines += ["|---|---:|---:|---:|"] + [f"| {' | '.join(row)} |" for row in statements]
        print("### PostgreSQL, by statement (pg_stat_statements)\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("messages", type=int, nargs="?", default=2000)
    parser.add_argument("threads", type=int, nargs="?", default=4)
    parser.add_argument("processes", type=int, nargs="?", default=2)
    parser.add_argument("--parts", type=int, choices=sorted(BODIES), default=1)
    parser.add_argument("--migrate", action="store_true", help="run migrate_schemas first")
    ns = parser.parse_args()
    main(ns.messages, ns.threads, ns.processes, ns.parts)
