"""Fixtures for the Alibaba Cloud compatible endpoint and the frequency limits (R-CMP-8)."""

import pytest
from django.core.cache import cache

from tenants import services as tenant_services

from ..conftest import SYSTEM, KeyedClient
from ..delivery.flow.conftest import _compliance_test_settings, make_sendable  # noqa: F401 (autouse)


def clear_frequency_counters(tenant) -> None:
    """A tenant id may come back after the test database is recreated; its old counters must not."""
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"sms:freq:{{{tenant.pk}}}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def frequency_on(settings):
    settings.COMPLIANCE_FREQUENCY_LIMITS = True


@pytest.fixture
def sendable(make_tenant):
    """A fresh tenant that can send (approved signature DemoShop + a verification template,
    a price, money) and an API client holding its key. Returns (tenant, client, template code)."""
    tenant = make_tenant("Frequency Co.")
    code = make_sendable(tenant)
    clear_frequency_counters(tenant)
    key, secret = tenant_services.issue_api_key(tenant=tenant, actor=SYSTEM)
    return tenant, KeyedClient(tenant, key.access_key_id, secret), code
