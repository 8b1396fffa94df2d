"""Single sends under concurrent load, as production runs them (issue 17, R-DLV-1).

    DATABASE_URL=... DRAMATIQ_BROKER_URL=redis://... .venv/bin/python bench/bench_load.py [seconds] [--profile]

Starts gunicorn (`--workers 4 --threads 4`, the deployment's settings) on a free port and
drives POST /api/v1/messages (one verification code per call, a new recipient each time) from
client processes on the same machine, with 1, 4, 16 and 64 concurrent clients, first for one
tenant and then spread over 20 tenants; then 32 clients of one tenant paced to 200 req/s in all.
Per level: req/s, p50, p99 and errors (any answer but 202). The R-CMP-8 frequency limits are on
(platform default for verification codes: 1 a minute, 5 an hour, 10 a day per recipient).
No worker runs: the relay jobs queued by the intake are flushed at the end.
"""

import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from http.client import HTTPConnection
from pathlib import Path

from _setup import ROOT, print_table, setup_django

LEVELS = (1, 4, 16, 64)
TENANTS = 20
WORKERS, THREADS = 4, 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(stamp: int) -> tuple[list[tuple[str, str, str, str]], int]:
    """TENANTS tenants, each able to send verification codes: (key id, secret, template code,
    signature) each, and the channel's id."""
    from datetime import timedelta

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from billing import services as billing
    from billing.models import Price
    from compliance import services as compliance
    from delivery import channels
    from delivery.models import Route
    from smsplatform.tenancy import ensure_template_schema
    from tenants import registration
    from tenants import services as tenant_services
    from tenants.management.commands.bootstrap import ensure_public_tenant

    actor = tenant_services.Actor.system("bench-load")
    call_command("migrate_schemas", interactive=False, verbosity=0)
    ensure_template_schema()
    ensure_public_tenant()
    plan = billing.default_plan()
    if not Price.objects.filter(plan=plan, message_type="verification", country="CN").exists():
        billing.announce_price(
            plan=plan,
            message_type="verification",
            country="CN",
            unit_price=35_000,
            effective_from=timezone.now() + timedelta(milliseconds=50),
            actor=actor,
        )
        time.sleep(0.1)
    channel = channels.create_channel(
        actor=actor,
        name=f"bench-load-{stamp}",
        host="127.0.0.1",
        port=9,
        system_id="b",
        password="b",
        source_addr="1069",
    )
    Route.objects.create(name=f"bench-load-{stamp}", channel=channel, priority=0)
    callers = []
    for i in range(TENANTS):
        tenant = registration.register_tenant(
            name=f"Bench load {stamp} {i}",
            licence_number=f"BENCHLOAD{stamp}{i:02d}",
            contact_name="b",
            contact_phone="+8613800000000",
            contact_email="b@example.com",
            actor=actor,
            activate=True,
        )
        connection.set_schema_to_public()
        signature = compliance.file_signature(
            tenant=tenant,
            text=f"LoadShop{'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[i]}{stamp % 9973}",  # one brand per tenant
            purpose="bench",
            actor=actor,
            proofs=[SimpleUploadedFile("p.pdf", b"%PDF-1.4", content_type="application/pdf")],
        )
        compliance.approve_signature(signature=signature, actor=actor)
        template = compliance.file_template(
            tenant=tenant,
            name="code",
            message_type="verification",
            body="Your code is ${code}.",
            variables={"code": {"kind": "code"}},
            actor=actor,
        )
        compliance.approve_template_version(version=template.versions.get(), actor=actor)
        billing.topup(tenant=tenant, amount=10_000 * 1_000_000, actor=actor, idempotency_key=f"bench-load:{stamp}:{i}")
        key, secret = tenant_services.issue_api_key(tenant=tenant, actor=actor, label="bench")
        callers.append((key.access_key_id, secret, template.code, signature.text))
    return callers, channel.pk


def _client(port, callers, first, count, seconds, rate, seed, out):
    """`count` client threads in this process (one keep-alive connection each) for `seconds`;
    `rate` > 0 paces each client to that many requests a second."""
    import threading

    results = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def run(index: int) -> None:
        key, secret, template, signature = callers[index % len(callers)]
        headers = {"Content-Type": "application/json", "X-Access-Key-Id": key, "X-Access-Key-Secret": secret}
        conn = HTTPConnection("127.0.0.1", port, timeout=30)
        mine, n = [], 0
        next_at = time.perf_counter()
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            if rate:
                if now < next_at:
                    time.sleep(next_at - now)
                next_at += 1 / rate
            n += 1
            body = json.dumps(
                {
                    "to": f"+86139{seed:02d}{index:02d}{n:04d}",
                    "signature": signature,
                    "template": template,
                    "params": {"code": f"{n % 1000000:06d}"},
                }
            )
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/messages", body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                status = 0
                conn.close()
                conn = HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append((time.perf_counter() - started, status))
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=run, args=(first + i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(results)


def drive(port, callers, clients, seconds, rate=0.0, seed=0) -> dict:
    processes = min(clients, 4)
    out = multiprocessing.Queue()
    share = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    procs, first = [], 0
    for i, count in enumerate(share):
        p = multiprocessing.Process(
            target=_client, args=(port, callers, first, count, seconds, rate, seed * 4 + i, out)
        )
        first += count
        procs.append(p)
    for p in procs:
        p.start()
    results = [r for _ in procs for r in out.get()]
    for p in procs:
        p.join()
    latencies = sorted(t for t, _ in results)
    errors = sum(1 for _, status in results if status != 202)
    return {
        "rate": len(results) / seconds,
        "p50": statistics.median(latencies) * 1000 if latencies else 0,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else 0,
        "errors": errors,
        "requests": len(results),
    }


def main(seconds: float, profile: bool) -> None:
    setup_django()
    from django.db import connection

    stamp = int(time.time())
    callers, channel_id = prepare(stamp)
    connection.close()
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "smsplatform.settings"}
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "smsplatform.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--threads",
            str(THREADS),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    rows = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        drive(port, callers[:1], 4, 2.0, seed=23)  # warm-up: every worker's caches and connections
        drive(port, callers, 4, 2.0, seed=24)
        seed = 0
        for label, group in (("1 tenant", callers[:1]), (f"{TENANTS} tenants", callers)):
            for clients in LEVELS:
                seed += 1
                r = drive(port, group, clients, seconds, seed=seed)
                rows.append(
                    (
                        f"single sends, {label}, {clients} clients",
                        f"{r['rate']:,.0f} req/s · p50 {r['p50']:.0f} ms · p99 {r['p99']:.0f} ms · {r['errors']} errors",
                        f"{r['requests']} requests",
                        "≥ 400 req/s at saturation, 0 errors" if clients == 64 else "0 errors",
                    )
                )
                print(rows[-1], flush=True)
        seed += 1
        r = drive(port, callers[:1], 32, seconds, rate=200 / 32, seed=seed)
        rows.append(
            (
                "single sends, 1 tenant, 32 clients paced to 200 req/s",
                f"{r['rate']:,.0f} req/s · p50 {r['p50']:.0f} ms · p99 {r['p99']:.0f} ms · {r['errors']} errors",
                f"{r['requests']} requests",
                "p99 ≤ 50 ms, 0 errors",
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        setup_django()
        import dramatiq

        from delivery.models import Channel

        Channel.objects.filter(pk=channel_id).update(enabled=False)
        dramatiq.get_broker().flush_all()
    print_table(
        f"Single sends through gunicorn ({WORKERS} workers × {THREADS} threads, {os.cpu_count()} cores, "
        f"load generator on the same machine, {seconds:.0f} s per level, frequency limits on)",
        rows,
    )
    _ = profile, Path


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(float(args[0]) if args else 10.0, "--profile" in sys.argv)
