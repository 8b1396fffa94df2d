"""Rate limits per API key and admin login lockout that a spoofed X-Forwarded-For cannot dodge."""

import pytest

from tenants import services

from ..conftest import SYSTEM, KeyedClient


@pytest.fixture
def tight_rate(settings):
    # Counters are per key and every test issues fresh keys, so nothing needs clearing.
    settings.API_RATE_LIMIT = "3/hour"  # an hour window: no boundary during the test


def test_rate_limit_per_key_answers_429_with_retry_after(tenant_a, tight_rate):
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    client = KeyedClient(tenant_a, key.access_key_id, secret)
    statuses = [client.get("/api/v1/account").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/account")
    assert response.json()["code"] == "rate_limited"
    assert 0 < int(response["Retry-After"]) <= 3600


def test_rate_limit_is_per_key(tenant_a, tight_rate):
    first, first_secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    second, second_secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    for _ in range(3):
        KeyedClient(tenant_a, first.access_key_id, first_secret).get("/api/v1/account")
    assert KeyedClient(tenant_a, first.access_key_id, first_secret).get("/api/v1/account").status_code == 429
    assert KeyedClient(tenant_a, second.access_key_id, second_secret).get("/api/v1/account").status_code == 200


def test_admin_login_lockout_ignores_spoofed_forwarded_for(client, superuser, settings):
    """Five bad passwords lock the account out even when each claims another client IP."""
    settings.AXES_FAILURE_LIMIT = 3
    for i in range(3):
        client.post(
            "/admin/login/?next=/admin/", {"username": "root1", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"10.9.9.{i}"
        )
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root1", "password": "pw-root-1"}, HTTP_X_FORWARDED_FOR="10.9.9.200"
    )
    assert response.status_code == 429  # locked out: the right password no longer works
