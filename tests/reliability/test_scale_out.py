"""Scale-out on RabbitMQ, as docs/deployment.md and deploy/compose.yaml describe it (issue 16,
R-DLV-3, R-BIL-2): 2 API processes (gunicorn), 3 dramatiq worker processes, the receipt listener
and the scheduler, all real processes on one PostgreSQL test database and a private RabbitMQ
vhost; two simulator channels (two SMSC accounts) with the carrier's TPS cap; short and long
(3-part) messages from two tenants. One worker is SIGKILLed mid-run. Proven: 0 lost, 0 parts
accepted twice (the simulator's duplicate_parts()), charges exact, each account's TPS held across
processes, and /metrics of one API process adds up every process's series.

SCALE_OUT_MESSAGES (default 800 in `make test`; `SCALE_OUT_MESSAGES=10000` for the issue's
figure) and SCALE_OUT_CARRIER_TPS (default 200 per account) size it. Channel.tps_limit is the
carrier's limit: the processes share it through Redis (delivery/throttle.py)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from billing.models import Account, Hold
from delivery.channels import create_channel
from delivery.models import Channel, Message, MessagePart, MessageStatus, Route

from ..delivery.flow.conftest import PRICE, make_sendable
from ..delivery.flow.live import ROOT, SYSTEM, live_tenant, signal_group, test_database_url, wait_for, worker_process
from ..metrics.conftest import Scrape

S = MessageStatus
pytestmark = pytest.mark.faults

WORKERS = 3
APIS = 2
RABBIT = ("127.0.0.1", 5672)
# With 【ScaleNotes】 and a 4-digit code: 151 UCS-2 characters, 3 parts of at most 67.
LONG_BODY = "您的订单已经发货，请留意物流信息并保持电话畅通，如有疑问请联系客服。" * 4 + "编号${code}。"


@pytest.fixture
def rabbit_vhost():
    """A private vhost (deleted afterwards) so other runs on the shared RabbitMQ are untouched."""
    try:
        socket.create_connection(RABBIT, timeout=2).close()
    except OSError as exc:
        pytest.skip(f"RabbitMQ does not answer at {RABBIT[0]}:{RABBIT[1]} ({exc}): scale-out test NOT run")
    if not shutil.which("rabbitmqctl"):
        pytest.skip("rabbitmqctl not found (needed for a private vhost): scale-out test NOT run")
    vhost = f"sms_scale_{uuid.uuid4().hex[:8]}"
    for command in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        done = subprocess.run(["rabbitmqctl", *command], capture_output=True, text=True, timeout=60)
        if done.returncode:
            pytest.skip(f"rabbitmqctl {command[0]} failed ({done.stderr.strip()[:200]}): scale-out test NOT run")
    yield f"amqp://guest:guest@{RABBIT[0]}:{RABBIT[1]}/{vhost}"
    subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, key: tuple[str, str], body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/batches",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Access-Key-Id": key[0], "X-Access-Key-Secret": key[1]},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_scale_out_on_rabbitmq_loses_nothing_sends_nothing_twice_and_holds_tps(
    live_db, smsc_factory, rabbit_vhost, figure
):
    total = int(os.environ.get("SCALE_OUT_MESSAGES", "800"))
    carrier_tps = int(os.environ.get("SCALE_OUT_CARRIER_TPS", "200"))
    sim = smsc_factory(
        credentials={"scale1": "pw1", "scale2": "pw2"},
        tps_cap=carrier_tps,  # above the carrier's rate parts are throttled (and counted per second)
        receipt_delay=0.05,
        max_redeliveries=1000,
        redeliver_delay=0.5,
    )
    Channel.objects.update(enabled=False)
    channels = []
    for n in (1, 2):
        channel = create_channel(
            actor=SYSTEM,
            name=f"scale-{n}-{time.monotonic_ns()}",
            host="127.0.0.1",
            port=sim.port,
            system_id=f"scale{n}",
            password=f"pw{n}",
            source_addr="10690",
            tps_limit=carrier_tps,  # the carrier's rate: shared by every worker process (delivery/throttle.py)
            window_size=10,
        )
        Route.objects.create(name=f"scale-{channel.pk}", channel=channel, priority=1, weight=1)
        channels.append(channel)

    # Two tenants: verification codes (1 part) and long notifications (3 UCS-2 parts).
    short_tenant, short_client = live_tenant("Scale Short Co.")
    short_template = make_sendable(short_tenant, signature="ScaleCodes", balance=total * PRICE)
    long_tenant, long_client = live_tenant("Scale Long Co.")
    _notification_price()
    long_template = make_sendable(
        long_tenant,
        signature="ScaleNotes",
        balance=total * 3 * PRICE,
        body=LONG_BODY,
        message_type="notification",
    )
    n_long = total // 4
    plan = [  # (tenant, client, template, numbers)
        (short_tenant, short_client, short_template, [f"+86139{n:08d}" for n in range(total - n_long)]),
        (long_tenant, long_client, long_template, [f"+86137{n:08d}" for n in range(n_long)]),
    ]

    # R-CMP-8 counts verification codes per tenant and number in Redis for an hour: a run within
    # the hour of an earlier one (same tenant ids in a fresh test database) was refused 600 of 800.
    _forget_frequency_counts([short_tenant.pk, long_tenant.pk])

    workdir = tempfile.mkdtemp(prefix="scale-out-")
    prom = os.path.join(workdir, "prom")
    os.makedirs(prom)
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DRAMATIQ_BROKER_URL": rabbit_vhost,
        "CACHE_URL": os.environ.get("CACHE_URL") or os.environ.get("DRAMATIQ_BROKER_URL", "redis://127.0.0.1:6379/0"),
        "PROMETHEUS_MULTIPROC_DIR": prom,
        "COMPLIANCE_SPIKE_MULTIPLE": "0",  # fresh tenants' first sends are not a spike
        # The sweeps the scheduler runs, shortened so the killed worker's submissions settle in the
        # test. The stale window must stay well above one claim's sending time: at 10 s (first run)
        # rows of live but CPU-starved senders were declared stale, reconciled without evidence and
        # resent while their sender still sent them (3-part messages accepted twice).
        "DELIVERY_SUBMITTING_STALE_SECONDS": "60",
        "DELIVERY_RECONCILE_SECONDS": "10",
        "DELIVERY_RECONCILE_SECONDS_VERIFICATION": "10",
        "DELIVERY_REQUEUE_AFTER_SECONDS": "15",
        "DELIVERY_RETRY_BACKOFF_MS": "100",
    }
    logs = {}
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str, command: list[str]) -> subprocess.Popen:
        logs[name] = open(os.path.join(workdir, f"{name}.log"), "w")  # noqa: SIM115
        procs[name] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=logs[name], stderr=logs[name], start_new_session=True
        )
        return procs[name]

    python = str(ROOT / ".venv" / "bin" / "python")
    ports = [_free_port() for _ in range(APIS)]
    try:
        for i, port in enumerate(ports):
            start(
                f"api{i}",
                [
                    str(ROOT / ".venv" / "bin" / "gunicorn"),
                    "-c",
                    "deploy/gunicorn.conf.py",
                    "smsplatform.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                ],
            )
        for i in range(WORKERS):
            logs[f"worker{i}"] = open(os.path.join(workdir, f"worker{i}.log"), "w")  # noqa: SIM115
            procs[f"worker{i}"] = worker_process(threads=2, log=logs[f"worker{i}"], env=env)
        start("listener", [python, "manage.py", "run_listener"])
        start("scheduler", [python, "manage.py", "run_scheduler"])
        for port in ports:
            wait_for(lambda p=port: _healthy(p), timeout=60, what=f"gunicorn on {port}", describe=lambda: _tails(logs))

        # Sends: 250 recipients a request, spread over both API processes, 4 at a time.
        requests = []
        for tenant, client, template, numbers in plan:
            key = (client.key_id, client.secret)
            for start_at in range(0, len(numbers), 250):
                body = {
                    "signature": "ScaleCodes" if tenant is short_tenant else "ScaleNotes",
                    "template": template,
                    "params": {"code": "2468"},
                    "recipients": numbers[start_at : start_at + 250],
                }
                requests.append((ports[len(requests) % APIS], key, body))
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda r: _post(*r), requests))
        intake_seconds = time.monotonic() - started
        assert all(status == 202 for status, _ in answers), [a for a in answers if a[0] != 202][:2]
        assert sum(body["accepted"] for _, body in answers) == total, Counter(
            m.get("reason") for _, body in answers for m in body.get("messages", []) if m.get("status") == "rejected"
        )
        ids = {short_tenant.pk: [], long_tenant.pk: []}
        for (_, key, _), (_, body) in zip(requests, answers, strict=True):
            tenant = short_tenant if key[0] == short_client.key_id else long_tenant
            ids[tenant.pk] += [m["id"] for m in body["messages"]]

        # Kill one worker process (SIGKILL: no clean-up) once ~30% of the parts went out.
        parts_expected = (total - n_long) + 3 * n_long
        wait_for(
            lambda: len(sim.submitted) >= parts_expected * 0.3,
            timeout=300,
            what="30% of the parts submitted",
            describe=lambda: _describe(plan, ids, sim, logs),
        )
        signal_group(procs["worker0"], signal.SIGKILL)
        procs.pop("worker0").wait(timeout=10)
        killed_at = len(sim.submitted)
        killed_wall = time.time()

        def all_delivered():
            return all(set(_statuses(t, ids[t.pk]).values()) == {S.DELIVERED} for t, *_ in plan)

        wait_for(
            all_delivered,
            timeout=max(400, total / 10),
            every=1,
            what="every message delivered",
            describe=lambda: _describe(plan, ids, sim, logs),
        )
        elapsed = time.monotonic() - started
        metrics_page = urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/metrics", timeout=30).read().decode()
    finally:
        for proc in procs.values():
            signal_group(proc, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
        for log in logs.values():
            log.close()

    # 0 lost: every part of every message reached the SMSC; 0 accepted twice.
    ours = {n.lstrip("+") for *_, numbers in plan for n in numbers}
    accepted = [(r.destination, r.udh[2] if r.udh else 1) for r in sim.submitted if r.destination in ours]
    expected = {(n.lstrip("+"), 1) for n in plan[0][3]} | {(n.lstrip("+"), p) for n in plan[1][3] for p in (1, 2, 3)}
    duplicates = {k: v for k, v in sim.duplicate_parts().items() if k[0] in ours}
    lost = expected - set(accepted)

    # Charges exact (R-BIL-2): every hold captured, amounts = parts x price, balances agree.
    captured, amounts, segments, answered = Counter(), 0, 0, 0
    for tenant, *_ in plan:
        with tenant_context(tenant):
            rows = list(Message.objects.filter(pk__in=ids[tenant.pk]).values_list("hold_id", "segments"))
            # parts recorded from the SMSC's answer (the others were proven by their receipts)
            answered += MessagePart.objects.filter(message_id__in=ids[tenant.pk]).exclude(smsc_message_id="").count()
        connection.set_schema_to_public()
        segments += sum(s for _, s in rows)
        holds = Hold.objects.filter(pk__in=[h for h, _ in rows])
        captured.update(holds.values_list("state", flat=True))
        amounts += sum(holds.values_list("amount", flat=True))
    balances = sum(Account.objects.filter(tenant__in=[t for t, *_ in plan]).values_list("balance", flat=True))
    funded = total * PRICE + total * 3 * PRICE

    # TPS held per account (the carrier's view): the busiest second of each channel.
    peaks = {f"scale{n}": max(sim.submits_per_second(f"scale{n}").values(), default=0) for n in (1, 2)}
    page = Scrape(metrics_page)

    scale = (
        f"{total} messages ({n_long} of 3 parts), {APIS} gunicorn + {WORKERS} dramatiq processes on RabbitMQ, "
        f"2 channels at {carrier_tps}/s; worker SIGKILLed after {killed_at} parts; "
        f"intake {intake_seconds:.1f} s, all delivered after {elapsed:.1f} s"
    )
    figure("messages lost (scale-out, worker SIGKILL)", len({d for d, _ in lost}), scale=scale)
    figure("parts accepted twice (scale-out)", sum(v - 1 for v in duplicates.values()), unit="parts", scale=scale)
    figure("holds not captured exactly once (scale-out)", total - captured["captured"], scale=scale)
    figure(
        "busiest second per channel vs carrier TPS",
        f"{peaks['scale1']}/{peaks['scale2']}",
        unit="parts/s",
        goal=f"<= {carrier_tps}",
        scale=scale,
    )
    assert not lost, f"{len(lost)} parts never accepted, e.g. {sorted(lost)[:5]}"
    assert duplicates == {}, _explain(plan, ids, sim, {k[0] for k in duplicates}, killed_wall)
    assert captured == {"captured": total}
    assert amounts == segments * PRICE == (total - n_long + 3 * n_long) * PRICE
    assert balances == funded - amounts
    assert min(peaks.values()) > 0, "both channels carried traffic"
    assert max(peaks.values()) <= carrier_tps * 1.1, (peaks, sim.throttled)
    # One API process's /metrics adds up every process of the host (multiprocess mode).
    assert page.value("sms_messages_accepted_total") == total
    assert page.value("dramatiq_messages_total", queue_name="delivery") >= 1
    # Parts counted "ok": every part recorded from its answer, none beyond what the SMSC took (the
    # killed worker's last answers were never read; their parts were proven by receipts instead).
    assert answered <= page.value("sms_submit_parts_total", outcome="ok") <= len(accepted)


def _forget_frequency_counts(tenant_ids: list[int]) -> None:
    """The Redis the processes count in is this process's cache (CACHE_URL is passed on)."""
    from smsplatform.shared_redis import shared_redis

    client = shared_redis()
    for tenant_id in tenant_ids if client is not None else ():
        keys = list(client.scan_iter(match=f"sms:freq:{{{tenant_id}}}:*", count=1000))
        if keys:
            client.delete(*keys)


def _notification_price() -> None:
    """A notification price in force now (announce_price needs the 7-day notice of R-BIL-4)."""
    from datetime import timedelta

    from django.utils import timezone

    from billing import services as billing
    from billing.models import Price

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
            announced_by="tests",
        )


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _statuses(tenant, ids) -> dict[int, str]:
    with tenant_context(tenant):
        found = dict(Message.objects.filter(pk__in=ids).values_list("pk", "status"))
    connection.set_schema_to_public()
    return found


def _tails(logs) -> str:
    out = []
    for name, log in logs.items():
        log.flush()
        with open(log.name) as f:
            out.append(f"--- {name}: {f.read()[-600:]}")
    return "\n".join(out)


def _describe(plan, ids, sim, logs) -> str:
    states = Counter()
    for tenant, *_ in plan:
        states.update(_statuses(tenant, ids[tenant.pk]).values())
    return f"states={dict(states)} submitted={len(sim.submitted)} throttled={sim.throttled}\n{_tails(logs)}"


def _explain(plan, ids, sim, numbers: set[str], killed_wall: float) -> str:
    """What the SMSC took for each number and what we recorded (times in s after the kill)."""
    from delivery.models import PendingReceipt, StatusEvent

    offset = time.time() - time.monotonic() - killed_wall
    out = []
    for number in sorted(numbers):
        out.append(f"== {number}")
        for r in sim.submitted:
            if r.destination == number:
                out.append(f"  smsc took {r.system_id} udh={r.udh} id={r.message_id} at {r.received_at + offset:+.2f}")
        for tenant, *_ in plan:
            with tenant_context(tenant):
                for m in Message.objects.filter(pk__in=ids[tenant.pk], recipient=f"+{number}"):
                    out.append(f"  message {m.pk} {m.status} attempts={m.submit_attempts} unknown={m.unknown_parts}")
                    for e in StatusEvent.objects.filter(message=m).order_by("at", "pk"):
                        out.append(
                            f"    {e.at.timestamp() - killed_wall:+.2f} {e.from_status}->{e.to_status} {e.detail}"
                        )
                    for part in m.parts.order_by("part"):
                        out.append(f"    part {part.part} id={part.carrier_message_id} {part.status}")
            connection.set_schema_to_public()
        for r in PendingReceipt.objects.filter(source_addr=number).order_by("pk"):
            applied = f"{r.applied_at.timestamp() - killed_wall:+.2f}" if r.applied_at else "never"
            out.append(
                f"  receipt id={r.carrier_message_id} ch={r.channel_id} at {r.received_at.timestamp() - killed_wall:+.2f} "
                f"applied {applied}"
            )
    return "\n".join(out)
