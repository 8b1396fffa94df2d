"""Billing fixtures. Data is set up through the billing services themselves."""

import itertools
import uuid

import pytest

from billing import services
from tenants.services import Actor

FINANCE = Actor(kind="user", id="0", label="user:finance-tests")
DELIVERY = Actor.system("delivery-tests")
_seq = itertools.count(1)


def key(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex}-{next(_seq)}"


def fund(tenant, amount: int):
    return services.topup(tenant=tenant, amount=amount, actor=FINANCE, idempotency_key=key("topup"))


def lines(n: int, *, segments: int = 1, unit_price: int = 35_000, prefix: str = "msg", message_type=None):
    return [
        services.HoldLine(
            reference=f"{prefix}:{i}", segments=segments, unit_price=unit_price, message_type=message_type
        )
        for i in range(n)
    ]


@pytest.fixture
def tenant(tenant_a):
    """Tenant A: its billing rows are created inside the test's transaction and rolled back.
    (Live-database tests make their own fresh tenants and never touch tenant A's account.)"""
    return tenant_a
