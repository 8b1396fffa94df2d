"""Fixtures for service levels and after-termination tests (R-DLV-8, R-TEN-8)."""

import itertools
from datetime import timedelta

import pytest

from tenants.services import Actor

SYSTEM = Actor.system("tests")
_seq = itertools.count(1)


@pytest.fixture
def channel(db):
    """A fresh channel: the send log of the session tenants holds no message of it."""
    from delivery.models import Channel
    from smsplatform.crypto import encrypt_secret

    return Channel.objects.create(
        name=f"sla-ch-{next(_seq)}", host="127.0.0.1", port=2775, system_id="x", password=encrypt_secret("x")
    )


@pytest.fixture
def admins(settings):
    settings.ADMINS = [("operators", "noc@example.com")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings.ADMINS


def messages(tenant, channel, *, delivered=0, undelivered=0, pending=0, latency=5.0, age=timedelta(minutes=20)):
    """Send-log rows on `channel`: delivered, undelivered (with receipt), pending (no receipt)."""
    from ..audit.conftest import make_message

    rows = []
    for status, count in (("delivered", delivered), ("undelivered", undelivered), ("submitted", pending)):
        for _ in range(count):
            rows.append(make_message(tenant, status=status, channel_id=channel.pk, latency=latency, age=age))
    return rows
