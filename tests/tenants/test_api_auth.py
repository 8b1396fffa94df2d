"""R-TEN-2: API keys (plain and HMAC-signed), per-tenant schema switching, error format."""

import time
import uuid

import pytest
from rest_framework.test import APIClient

from tenants import services
from tenants.models import ApiKey

from ..conftest import SYSTEM, KeyedClient

ACCOUNT = "/api/v1/account"


def signed_headers(key_id: str, secret: str, *, method="GET", path=ACCOUNT, body=b"", timestamp=None, nonce=None):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or uuid.uuid4().hex
    canonical = services.canonical_request(
        method=method, path=path, query="", timestamp=timestamp, nonce=nonce, body=body
    )
    return {
        "HTTP_X_ACCESS_KEY_ID": key_id,
        "HTTP_X_TIMESTAMP": timestamp,
        "HTTP_X_NONCE": nonce,
        "HTTP_X_SIGNATURE": services.sign_request(secret=secret, canonical=canonical),
    }


def test_account_returns_the_callers_tenant(client_a, client_b, tenant_a, tenant_b):
    a = client_a.get(ACCOUNT)
    b = client_b.get(ACCOUNT)
    assert a.status_code == 200
    assert b.status_code == 200
    assert a.json()["schema_name"] == tenant_a.schema_name
    assert b.json()["schema_name"] == tenant_b.schema_name


def test_no_anonymous_access(db):
    """R-TEN-2: no anonymous use (001 §4.3)."""
    response = APIClient().get(ACCOUNT)
    assert response.status_code == 401
    assert response.json() == {
        "code": "not_authenticated",
        "message": "Send X-Access-Key-Id and a secret or an HMAC signature.",
        "details": None,
    }


def test_wrong_secret_is_refused(client_a):
    client_a.credentials(HTTP_X_ACCESS_KEY_ID=client_a.key_id, HTTP_X_ACCESS_KEY_SECRET="not-the-secret")
    response = client_a.get(ACCOUNT)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_revoked_key_gets_401(tenant_a):
    """R-TEN-2: revocation ends a key at once."""
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    client = KeyedClient(tenant_a, key.access_key_id, secret)
    assert client.get(ACCOUNT).status_code == 200
    services.revoke_api_key(key=key, actor=SYSTEM, reason="leaked")
    response = client.get(ACCOUNT)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_rotation_issues_a_new_key_and_ends_the_old(tenant_a):
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    new_key, new_secret = services.rotate_api_key(key=key, actor=SYSTEM)
    assert KeyedClient(tenant_a, key.access_key_id, secret).get(ACCOUNT).status_code == 401
    assert KeyedClient(tenant_a, new_key.access_key_id, new_secret).get(ACCOUNT).status_code == 200


def test_secret_is_stored_hashed_never_in_clear(tenant_a):
    """R-TEN-2: neither column holds the secret in clear."""
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    stored = ApiKey.objects.get(pk=key.pk)
    assert secret not in stored.secret_hash
    assert secret.encode() not in bytes(stored.secret_encrypted)
    assert stored.secret_hash == services.hash_secret(secret)


def test_last_used_is_recorded(tenant_a):
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    assert key.last_used_at is None
    KeyedClient(tenant_a, key.access_key_id, secret).get(ACCOUNT)
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_signed_request_is_accepted(tenant_a):
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    response = APIClient().get(ACCOUNT, **signed_headers(key.access_key_id, secret))
    assert response.status_code == 200
    assert response.json()["schema_name"] == tenant_a.schema_name


def test_signed_request_with_stale_timestamp_is_refused(tenant_a, settings):
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    stale = int(time.time()) - settings.API_HMAC_MAX_SKEW_SECONDS - 5
    response = APIClient().get(ACCOUNT, **signed_headers(key.access_key_id, secret, timestamp=stale))
    assert response.status_code == 401
    assert response.json()["code"] == "signature_expired"


def test_signed_request_with_reused_nonce_is_refused(tenant_a):
    """R-TEN-2: a replayed request (same nonce) is refused."""
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    headers = signed_headers(key.access_key_id, secret, nonce="nonce-123")
    assert APIClient().get(ACCOUNT, **headers).status_code == 200
    replay = APIClient().get(ACCOUNT, **headers)
    assert replay.status_code == 401
    assert replay.json()["code"] == "nonce_reused"


def test_signed_request_with_tampered_body_is_refused(tenant_a):
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    headers = signed_headers(key.access_key_id, secret, method="PATCH", body=b'{"contact_name": "A"}')
    response = APIClient().patch(ACCOUNT, data=b'{"contact_name": "B"}', content_type="application/json", **headers)
    assert response.status_code == 401
    assert response.json()["code"] == "signature_mismatch"


def test_signed_request_with_wrong_secret_is_refused(tenant_a):
    key, _ = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    response = APIClient().get(ACCOUNT, **signed_headers(key.access_key_id, "guessed"))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("action", "code"), [("suspend_tenant", "tenant_suspended"), ("terminate_tenant", "tenant_terminated")]
)
def test_suspended_or_terminated_tenant_gets_403_on_writes(make_tenant, action, code):
    """R-TEN-3: sending (any write) is blocked with a stable error code."""
    tenant = make_tenant(f"{action} Co.")
    key, secret = services.issue_api_key(tenant=tenant, actor=SYSTEM)
    client = KeyedClient(tenant, key.access_key_id, secret)
    getattr(services, action)(tenant=tenant, actor=SYSTEM, reason="violation")
    response = client.patch(ACCOUNT, {"contact_name": "New"}, format="json")
    if action == "terminate_tenant":
        # Termination also revokes every key.
        assert response.status_code == 401
        return
    assert response.status_code == 403
    assert response.json()["code"] == code


def test_suspended_tenant_can_still_read_why(make_tenant):
    tenant = make_tenant("Readable Co.")
    key, secret = services.issue_api_key(tenant=tenant, actor=SYSTEM)
    services.suspend_tenant(tenant=tenant, actor=SYSTEM, reason="complaint overdue")
    response = KeyedClient(tenant, key.access_key_id, secret).get(ACCOUNT)
    assert response.status_code == 200
    assert response.json()["state"] == "suspended"
    assert response.json()["state_reason"] == "complaint overdue"


def test_pending_tenant_is_refused_writes(make_tenant):
    tenant = make_tenant("Waiting Co.", activate=False)
    key, secret = services.issue_api_key(tenant=tenant, actor=SYSTEM)
    response = KeyedClient(tenant, key.access_key_id, secret).patch(ACCOUNT, {"contact_name": "X"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_pending"


def test_customer_updates_contact_details(client_a):
    response = client_a.patch(ACCOUNT, {"contact_phone": "+8613911112222"}, format="json")
    assert response.status_code == 200
    assert response.json()["contact_phone"] == "+8613911112222"


def test_validation_errors_use_the_one_error_format(client_a):
    response = client_a.patch(ACCOUNT, {"contact_email": "not-an-email"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "contact_email" in body["details"]


def test_openapi_schema_lists_the_account_endpoint(db):
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/account" in response.json()["paths"]


def test_api_docs_page_is_served(db):
    assert APIClient().get("/api/docs/").status_code == 200
