"""Fixtures for the delivery-flow tests: channels, routes and messages set up through the models
that operators edit (channels/routes) or the send path's own rows."""

import itertools
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from delivery.models import Channel, Message, MessageStatus, OutboxEntry, Route, SendRequest, StatusEvent
from smsplatform.crypto import encrypt_secret

_seq = itertools.count(1)


@pytest.fixture
def make_channel(db):
    def make(*, name=None, port=2775, priority=100, weight=1, route=True, **fields):
        channel = Channel.objects.create(
            name=name or f"ch-{next(_seq)}",
            host="127.0.0.1",
            port=port,
            system_id="demo",
            password=encrypt_secret("demo"),
            source_addr=fields.pop("source_addr", "1069"),
            **fields,
        )
        if route:
            Route.objects.create(name=f"r-{channel.name}", channel=channel, priority=priority, weight=weight)
        return channel

    return make


def add_message(
    tenant, *, status=MessageStatus.ACCEPTED, recipient="+8613800138000", content="【Demo】hello", **fields
):
    """A stored message as the accept path leaves it (used where the test is about what follows)."""
    with tenant_context(tenant):
        request = SendRequest.objects.create(kind="single", body_hash="x")
        now = timezone.now()
        msg = Message.objects.create(
            request=request,
            recipient=recipient,
            country="CN",
            carrier="china_mobile",
            message_type="notification",
            content=content,
            segments=1,
            status=status,
            status_at=now,
            **fields,
        )
        StatusEvent.objects.create(message=msg, from_status="", to_status=status, at=now)
    return msg


def add_outbox(tenant, messages, *, available_at=None):
    return OutboxEntry.objects.create(
        tenant=tenant,
        request_id=messages[0].request_id,
        message_ids=[m.pk for m in messages],
        available_at=available_at or timezone.now(),
    )


# --- a tenant that can send: approved signature + template, a price, money ------------------


PRICE = 40_000  # micro-units per segment (0.04 CNY)


def _actor(label: str):
    from tenants.services import Actor

    return Actor.system(label)


def make_sendable(
    tenant,
    *,
    signature: str = "DemoShop",
    balance: int = 100_000_000,
    body: str = "Your code is ${code}.",
    message_type: str = "verification",
):
    """Set a tenant up through the other apps' own services (R-CMP-1/2, R-BIL-1/4).
    Returns the template code."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from billing import services as billing
    from billing.models import Price
    from compliance import services as compliance

    sig = compliance.file_signature(
        tenant=tenant,
        text=signature,
        purpose="shop",
        actor=_actor("customer"),
        proofs=[SimpleUploadedFile("licence.pdf", b"%PDF-1.4 proof", content_type="application/pdf")],
    )
    # the same brand is approved for other test tenants: a flagged look-alike needs the reviewer's reason
    compliance.approve_signature(signature=sig, actor=_actor("reviewer"), reason="trademark proof checked")
    variables = {"code": {"kind": "code"}} if "${code}" in body else {}
    template = compliance.file_template(
        tenant=tenant, name="t", message_type=message_type, body=body, variables=variables, actor=_actor("customer")
    )
    compliance.approve_template_version(version=template.versions.get(), actor=_actor("reviewer"))
    plan = billing.default_plan()
    if not Price.objects.filter(plan=plan, message_type=message_type, country="CN").exists():
        starts = timezone.now() + timedelta(milliseconds=50)  # a price never starts in the past
        billing.announce_price(
            plan=plan,
            message_type=message_type,
            country="CN",
            unit_price=PRICE,
            effective_from=starts,
            actor=_actor("finance"),
        )
        time.sleep(0.06)
    if balance:
        billing.topup(
            tenant=tenant, amount=balance, actor=_actor("finance"), idempotency_key=f"topup:{tenant.pk}:{next(_seq)}"
        )
    return template.code


@pytest.fixture(autouse=True)
def _compliance_test_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.COMPLIANCE_SPIKE_MULTIPLE = 0  # a fresh tenant's first sends are not a spike
    settings.DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS = True  # the customer endpoints run on loopback


@pytest.fixture
def worker(live_db):
    """start(threads=2) → a real dramatiq Worker on the Redis broker, in this process."""
    import dramatiq

    import smsplatform.worker  # noqa: F401  (imports every actor)

    broker = dramatiq.get_broker()
    broker.client.flushdb()
    started = []

    def start(threads: int = 2):
        w = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        w.start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop(timeout=10_000)
        # dramatiq never removes a stopped Worker's middleware: it would keep adding consumers
        # (that fetch and never run jobs) for queues declared later in this process.
        broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not w]


@pytest.fixture
def listener(live_db):
    """start(channel_id) → the receipt/reply listener (run_listener's loop) in a thread."""
    import threading

    from delivery.management.commands.run_listener import listen

    stop = threading.Event()
    threads = []

    def start(channel_id: int):
        thread = threading.Thread(target=listen, args=(channel_id, stop), daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _live_tests_only_on_the_test_database(request):
    """pytest-django creates the test database only when some collected test asks for `db`; a
    run of live tests alone would otherwise reach the developer database (tests/conftest.py now
    guards this too)."""
    if "live_db" in request.fixturenames:
        from django.db import connection

        if not connection.settings_dict["NAME"].startswith("test_"):
            pytest.fail(
                "live tests need the test database: run them together with a `db` test "
                "(e.g. the whole tests/delivery/flow directory)"
            )


@pytest.fixture
def make_channel_live(live_db):
    """A committed channel routing everything (every other channel disabled)."""
    from .live import only_channel

    def make(port: int = 2775):
        return only_channel(port=port)

    return make
