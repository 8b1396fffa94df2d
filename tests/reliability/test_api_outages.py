"""Issue 21, item 5: the API during a database or Redis outage (R-DLV-1).

Real PostgreSQL and Redis behind a TcpProxy (tests/reliability/outage.py) that is taken down:
every endpoint answers a coded JSON 503 `service_unavailable` with Retry-After (never Django's
HTML page), the rate limiter keeps counting per process when Redis is down so intake goes on
through the outbox, and /readyz answers within a second whatever is down or frozen.
"""

import time

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from delivery.models import Message

from ..delivery.flow.conftest import make_sendable
from ..delivery.flow.live import live_tenant
from .outage import TcpProxy, through_proxy

# Committed data (live_db), never transaction=True: its flush would truncate every table of the
# session (the role groups, the seeded limits, the session tenants) under the tests that follow.
pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture
def sender(live_db):
    tenant, client = live_tenant("Outage API Co.")
    template = make_sendable(tenant)
    connection.set_schema_to_public()
    return tenant, client, template


def _send(client, template, to):
    body = {"signature": "DemoShop", "template": template, "params": {"code": "1234"}, "to": to}
    return client.post("/api/v1/messages", body, format="json")


def _assert_service_unavailable(response):
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["message"]
    assert int(response["Retry-After"]) > 0


def test_database_outage_answers_json_503_with_retry_after_never_html(sender):
    tenant, client, template = sender
    with through_proxy() as db:
        assert client.get("/api/v1/account").status_code == 200  # a persistent connection is open
        db.down()
        # The open connection dies under a request (the view's query fails) …
        _assert_service_unavailable(_send(client, template, "+8613900000001"))
        # … and new ones are refused: reads, writes, the admin, unknown-tenant calls.
        _assert_service_unavailable(_send(client, template, "+8613900000001"))
        _assert_service_unavailable(client.get("/api/v1/messages"))
        _assert_service_unavailable(client.get("/api/v1/billing/balance"))
        _assert_service_unavailable(Client().get("/admin/"))
        _assert_service_unavailable(Client().post("/api/v1/messages", {}, content_type="application/json"))
        db.up()
        retried = _send(client, template, "+8613900000001")
        assert retried.status_code == 202, retried.content[:300]
    with tenant_context(tenant):
        # The refused attempts changed nothing: one message, from the retry.
        assert Message.objects.filter(recipient="+8613900000001").count() == 1


def test_database_frozen_answers_503_within_the_connect_timeout(sender, settings):
    tenant, client, template = sender
    with through_proxy() as db:
        db.hang()
        started = time.monotonic()
        _assert_service_unavailable(client.get("/api/v1/messages"))
        assert time.monotonic() - started < settings.DATABASES["default"]["OPTIONS"]["connect_timeout"] + 2


@pytest.fixture
def redis_proxy(settings):
    """The rate limiter's cache (Redis) behind a TcpProxy."""
    location = settings.CACHES["default"].get("LOCATION")
    if not location or not location.startswith("redis://"):
        pytest.skip("the cache is not a TCP Redis")
    hostport, _, db = location.removeprefix("redis://").partition("/")
    host, _, port = hostport.rpartition(":")
    proxy = TcpProxy(host, int(port))
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{proxy.port}/{db or 0}"}
    }
    yield proxy
    proxy.close()
    caches["default"].close()


def test_rate_limiter_falls_back_per_process_when_redis_is_down(sender, redis_proxy, settings):
    """Intake continues through the outbox (PostgreSQL only); the limit still holds per process."""
    from ..reliability.test_faults import BrokerDown

    tenant, client, template = sender
    settings.API_RATE_LIMIT = "4/minute"
    redis_proxy.down()
    with BrokerDown():  # the broker is the same Redis: publishing the relay job fails too
        answers = []
        for n in range(6):
            started = time.monotonic()
            response = _send(client, template, f"+86139000001{n:02d}")
            answers.append((response.status_code, time.monotonic() - started))
    codes = [code for code, _ in answers]
    # The window may roll over between requests: at least the first four pass, never more than 4 per window.
    assert codes[:4] == [202] * 4, answers
    assert codes.count(429) >= 1 or time.time() % 60 < 5, answers
    assert max(seconds for _, seconds in answers) < 2.0, answers
    with tenant_context(tenant):
        assert Message.objects.filter(recipient__startswith="+86139000001").count() == codes.count(202)


def test_rate_limiter_uses_redis_again_when_it_is_back(sender, redis_proxy, settings, monkeypatch):
    from tenants import throttling

    tenant, client, template = sender
    settings.API_RATE_LIMIT = "1000/minute"
    redis_proxy.down()
    assert client.get("/api/v1/messages").status_code == 200
    redis_proxy.up()
    monkeypatch.setattr(throttling._local, "redis_down_until", 0.0)  # skip the 2 s pause
    assert client.get("/api/v1/messages").status_code == 200
    keys = caches["default"]._cache.get_client(write=False).keys("*ratelimit*")
    assert keys, "the shared counter is used again"


def test_readyz_answers_within_a_second_when_database_or_broker_is_down_or_frozen(live_db, settings):
    from ..reliability.test_faults import BrokerDown

    probe = Client()
    with through_proxy() as db:
        db.hang()  # frozen: connects never answer
        started = time.monotonic()
        response = probe.get("/readyz")
        assert time.monotonic() - started < 1.0
        assert response.status_code == 503
        assert response.json()["code"] == "not_ready"
        assert response.json()["checks"]["database"]["ok"] is False
        db.down()
        started = time.monotonic()
        assert probe.get("/readyz").status_code == 503
        assert time.monotonic() - started < 1.0
    with BrokerDown():
        started = time.monotonic()
        response = probe.get("/readyz")
        assert time.monotonic() - started < 1.0
        assert response.status_code == 503
        assert response.json()["checks"]["broker"] == {"ok": False, "error": "ConnectionError"}
    assert probe.get("/readyz").status_code == 200
