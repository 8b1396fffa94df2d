"""Hostile headers and bodies on the API (R-TEN-2): never a 500, always the JSON error format
with a code; a signed request's nonce stays used whatever the outcome (no replay after a refusal)."""

import time
import uuid

import pytest
from rest_framework.test import APIClient

from tenants import services

from ..conftest import SYSTEM

ACCOUNT = "/api/v1/account"


def signed(key_id, secret, *, method="GET", path=ACCOUNT, body=b"", nonce=None, timestamp=None):
    timestamp = str(int(time.time())) if timestamp is None else timestamp
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


def _json_error(response, status):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) >= {"code", "message"}
    return body["code"]


def test_refused_signed_request_cannot_be_replayed_after_reactivation(make_tenant):
    """R-TEN-2/R-TEN-3: a suspended tenant's signed write (403) keeps its nonce consumed, so the
    captured request replayed after reactivation is refused (it used to succeed)."""
    tenant = make_tenant("Replay Co.")
    key, secret = services.issue_api_key(tenant=tenant, actor=SYSTEM)
    services.suspend_tenant(tenant=tenant, actor=SYSTEM, reason="review")
    body = b'{"contact_name": "Mallory"}'
    headers = signed(key.access_key_id, secret, method="PATCH", body=body)
    first = APIClient().patch(ACCOUNT, data=body, content_type="application/json", **headers)
    assert _json_error(first, 403) == "tenant_suspended"
    services.reactivate_tenant(tenant=tenant, actor=SYSTEM, reason="cleared")
    replay = APIClient().patch(ACCOUNT, data=body, content_type="application/json", **headers)
    assert _json_error(replay, 401) == "nonce_reused"
    tenant.refresh_from_db()
    assert tenant.contact_name != "Mallory"


def test_signed_request_refused_as_invalid_keeps_its_nonce(tenant_a):
    """R-TEN-2: a 400 rolls the request back, never the nonce."""
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    body = b'{"contact_email": "not-an-email"}'
    headers = signed(key.access_key_id, secret, method="PATCH", body=body)
    assert APIClient().patch(ACCOUNT, data=body, content_type="application/json", **headers).status_code == 400
    replay = APIClient().patch(ACCOUNT, data=body, content_type="application/json", **headers)
    assert _json_error(replay, 401) == "nonce_reused"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("HTTP_X_TIMESTAMP", "9" * 400),
        ("HTTP_X_TIMESTAMP", "-1"),
        ("HTTP_X_TIMESTAMP", "１２３"),
        ("HTTP_X_TIMESTAMP", "1e10"),
        ("HTTP_X_SIGNATURE", "é" * 64),
        ("HTTP_X_SIGNATURE", "z" * 64),
        ("HTTP_X_SIGNATURE", "a" * 10_000),
        ("HTTP_X_SIGNATURE", ""),
        ("HTTP_X_NONCE", "n\x00nce"),
        ("HTTP_X_NONCE", "ü"),
        ("HTTP_X_NONCE", "x" * 65),
        ("HTTP_X_NONCE", ""),
        ("HTTP_X_ACCESS_KEY_ID", "AK\x00"),
        ("HTTP_X_ACCESS_KEY_ID", "é"),
        ("HTTP_X_ACCESS_KEY_ID", "A" * 5000),
    ],
)
def test_malformed_signing_headers_get_401_with_a_code(tenant_a, header, value):
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    headers = {**signed(key.access_key_id, secret), header: value}
    code = _json_error(APIClient().get(ACCOUNT, **headers), 401)
    assert code in {
        "authentication_failed",
        "invalid_timestamp",
        "invalid_signature",
        "invalid_nonce",
        "signature_expired",
        "signature_mismatch",
    }


@pytest.mark.parametrize("value", ["AK\x00", "é" * 3, "A" * 5000])
def test_malformed_plain_key_id_gets_401(db, value):
    response = APIClient().get(ACCOUNT, HTTP_X_ACCESS_KEY_ID=value, HTTP_X_ACCESS_KEY_SECRET="x\x00")
    assert _json_error(response, 401) == "authentication_failed"


def test_deeply_nested_json_is_a_400(client_a):
    body = "[" * 100_000 + "]" * 100_000
    response = client_a.patch(ACCOUNT, data=body, content_type="application/json")
    assert _json_error(response, 400) == "malformed_request"


def test_moderately_nested_json_beyond_the_bound_is_a_400(client_a):
    body = '{"contact_name": ' + "[" * 200 + "]" * 200 + "}"
    response = client_a.patch(ACCOUNT, data=body, content_type="application/json")
    assert _json_error(response, 400) == "malformed_request"


def test_oversized_body_is_a_json_413(client_a):
    body = b'{"contact_name": "' + b"x" * 3_000_000 + b'"}'
    response = client_a.patch(ACCOUNT, data=body, content_type="application/json")
    assert _json_error(response, 413) == "payload_too_large"


def test_oversized_signed_body_is_a_json_413(tenant_a):
    key, secret = services.issue_api_key(tenant=tenant_a, actor=SYSTEM)
    body = b"x" * 3_000_000
    headers = signed(key.access_key_id, secret, method="PATCH", body=body)
    response = APIClient().patch(ACCOUNT, data=body, content_type="application/json", **headers)
    assert _json_error(response, 413) == "payload_too_large"


def test_garbled_content_length_is_a_json_400(client_a):
    response = client_a.patch(ACCOUNT, data=b"{}", content_type="application/json", CONTENT_LENGTH="12abc")
    assert _json_error(response, 400) == "malformed_request"
