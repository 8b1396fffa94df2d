"""GET /healthz and /readyz: probes for load balancers and monitoring (no auth, no tenant data)."""

from datetime import timedelta

import dramatiq
import pytest
from django.utils import timezone

from delivery.models import OutboxEntry
from smsplatform.broker import build_broker

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_credentials(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_and_broker_and_counts_backlog(client, tenant_a, make_channel):
    make_channel()
    OutboxEntry.objects.create(
        tenant=tenant_a, request_id=1, message_ids=[1], available_at=timezone.now() - timedelta(minutes=5)
    )
    OutboxEntry.objects.create(tenant=tenant_a, request_id=2, message_ids=[2], available_at=timezone.now())
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["broker"]["ok"]
    assert body["backlog"]["outbox_overdue"] == 1  # the fresh entry is not overdue yet
    assert body["backlog"]["channels_enabled"] >= 1


@pytest.fixture
def unreachable_broker():
    """The real broker swapped for one pointing at a closed port (nothing listens on port 1)."""
    original = dramatiq.get_broker()
    dramatiq.set_broker(build_broker("redis://127.0.0.1:1/0"))
    yield
    dramatiq.set_broker(original)


def test_readyz_is_503_with_a_code_when_the_broker_is_down(client, unreachable_broker):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert "broker" in body["message"]


def test_readyz_refuses_writes(client):
    assert client.post("/readyz").status_code == 405
