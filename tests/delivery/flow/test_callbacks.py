"""Callbacks: signed POSTs (HMAC-SHA256, X-Signature) to a real local HTTP endpoint, retried with
exponential back-off, and marked failed (visible in the admin) when they keep failing."""

import hashlib
import hmac
import http.server
import json
import threading

import pytest
from django.test import override_settings
from django.utils import timezone

from delivery.callbacks import deliver_callback, delivery_settings_for, enqueue_callback
from delivery.models import CallbackDelivery, CallbackState
from smsplatform.crypto import decrypt_secret


class Endpoint:
    def __init__(self, status=200):
        self.status = status
        self.received = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    ep = Endpoint()
    yield ep
    ep.close()


def test_callback_is_signed_with_the_tenant_secret(tenant_a, endpoint):
    item = enqueue_callback(
        tenant=tenant_a, url=endpoint.url, event="message.status", payload={"message_id": 1, "status": "delivered"}
    )
    deliver_callback(callback_id=item.pk)
    item.refresh_from_db()
    assert item.state == CallbackState.DELIVERED
    headers, body = endpoint.received[0]
    secret = decrypt_secret(delivery_settings_for(tenant=tenant_a).callback_secret)
    assert headers["X-Signature"] == hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert json.loads(body) == {"message_id": 1, "status": "delivered"}


def test_the_tenant_default_url_is_used_when_the_message_has_none(tenant_a, endpoint):
    from delivery.callbacks import update_callback_settings
    from tenants.services import Actor

    update_callback_settings(tenant=tenant_a, callback_url=endpoint.url, actor=Actor.system("tests"))
    item = enqueue_callback(tenant=tenant_a, url="", event="reply", payload={"event": "reply"})
    assert item.url == endpoint.url


def test_no_url_means_no_callback(tenant_b):
    assert enqueue_callback(tenant=tenant_b, url="", event="reply", payload={}) is None


@override_settings(DELIVERY_CALLBACK_BACKOFF_SECONDS=10, DELIVERY_CALLBACK_MAX_ATTEMPTS=3)
def test_failing_endpoint_is_retried_with_backoff_then_marked_failed(tenant_a):
    ep = Endpoint(status=500)
    try:
        item = enqueue_callback(tenant=tenant_a, url=ep.url, event="message.status", payload={"x": 1})
        delays = []
        for _ in range(3):
            before = timezone.now()
            deliver_callback(callback_id=item.pk)
            item.refresh_from_db()
            delays.append(round((item.next_attempt_at - before).total_seconds()))
        assert item.state == CallbackState.FAILED
        assert item.attempts == 3
        assert item.last_status_code == 500
        assert delays[:2] == [10, 20]  # exponential
        assert len(ep.received) == 3
        assert CallbackDelivery.objects.filter(state=CallbackState.FAILED, pk=item.pk).exists()
    finally:
        ep.close()


def test_unreachable_endpoint_is_recorded(tenant_a):
    item = enqueue_callback(tenant=tenant_a, url="http://127.0.0.1:9/none", event="reply", payload={})
    deliver_callback(callback_id=item.pk)
    item.refresh_from_db()
    assert item.state == CallbackState.PENDING
    assert item.attempts == 1
    assert item.last_error


def test_callback_secret_is_shown_to_the_tenant_and_rotatable(client_a):
    first = client_a.get("/api/v1/callback-settings").json()
    response = client_a.put(
        "/api/v1/callback-settings", {"callback_url": "https://example.com/hook", "rotate_secret": True}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["callback_url"] == "https://example.com/hook"
    assert response.json()["callback_secret"] != first["callback_secret"]
    assert len(response.json()["callback_secret"]) == 64


def test_callbacks_to_private_addresses_are_refused_in_production(tenant_a, endpoint, settings):
    """SSRF: a tenant cannot make the platform POST into our own network."""
    settings.DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS = False
    item = enqueue_callback(tenant=tenant_a, url=endpoint.url, event="reply", payload={})
    deliver_callback(callback_id=item.pk)
    item.refresh_from_db()
    assert item.state == CallbackState.FAILED
    assert "non-public" in item.last_error
    assert endpoint.received == []


@pytest.mark.parametrize("callback_format", ["standard", "alibaba"])
def test_status_callback_reads_only_status_callback_fields(tenant_a, callback_format, django_assert_num_queries):
    """Issue 16: the send path loads messages with load_only(…, STATUS_CALLBACK_FIELDS + its own)
    and queues their status callbacks: a field the callback reads that the tuple lacks would be
    one SELECT per message. Built from a row loaded with exactly those fields: no query."""
    from django_tenants.utils import tenant_context

    from delivery.callbacks import STATUS_CALLBACK_FIELDS, _status_extra, callback_body, status_event_body
    from delivery.models import Message
    from smsplatform.db import load_only

    from .conftest import add_message

    msg = add_message(tenant_a, status="delivered", client_ref="cb-fields", done_at=timezone.now())
    with tenant_context(tenant_a):
        (loaded,) = load_only(Message.objects.filter(pk=msg.pk), STATUS_CALLBACK_FIELDS)
        with django_assert_num_queries(0):
            body = callback_body(
                callback_format=callback_format,
                event="message.status",
                payload=status_event_body(loaded),
                extra=_status_extra(loaded),
            )
    assert body is not None
    assert "cb-fields" in body or callback_format == "alibaba"
