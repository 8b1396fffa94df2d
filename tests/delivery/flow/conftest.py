"""Fixtures for the delivery-flow tests: channels, routes and messages set up through the models
that operators edit (channels/routes) or the send path's own rows."""

import itertools

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from delivery.models import Channel, Message, MessageStatus, OutboxEntry, Route, SendRequest, StatusEvent
from delivery.services import encrypt_secret

_seq = itertools.count(1)


@pytest.fixture
def make_channel(db):
    def make(*, name=None, port=2775, priority=100, weight=1, route=True, **fields):
        channel = Channel.objects.create(
            name=name or f"ch-{next(_seq)}", host="127.0.0.1", port=port, system_id="demo", password=encrypt_secret("demo"),
            source_addr=fields.pop("source_addr", "1069"), **fields,
        )
        if route:
            Route.objects.create(name=f"r-{channel.name}", channel=channel, priority=priority, weight=weight)
        return channel

    return make


def add_message(tenant, *, status=MessageStatus.ACCEPTED, recipient="+8613800138000", content="【Demo】hello", **fields):
    """A stored message as the accept path leaves it (used where the test is about what follows)."""
    with tenant_context(tenant):
        request = SendRequest.objects.create(kind="single", body_hash="x")
        now = timezone.now()
        msg = Message.objects.create(
            request=request, recipient=recipient, country="CN", carrier="china_mobile", message_type="notification",
            content=content, segments=1, status=status, status_at=now, **fields,
        )
        StatusEvent.objects.create(message=msg, from_status="", to_status=status, at=now)
    return msg


def add_outbox(tenant, messages, *, available_at=None):
    return OutboxEntry.objects.create(
        tenant=tenant, request_id=messages[0].request_id, message_ids=[m.pk for m in messages],
        available_at=available_at or timezone.now(),
    )
