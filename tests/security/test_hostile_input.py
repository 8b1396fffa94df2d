"""Hostile input on the send path (R-DLV-1, R-CMP-2, R-TEN-2): every bad request gets a clear
4xx with a stable code, and stores nothing (rows counted before and after: requests, messages,
holds, ledger entries)."""

import hashlib
import json
import time
import uuid

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from billing.models import Hold, LedgerEntry
from compliance import services as compliance
from delivery.models import Message, SendRequest
from tenants import services as tenant_services

from ..conftest import SYSTEM
from ..delivery.flow.conftest import make_sendable


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.COMPLIANCE_SPIKE_MULTIPLE = 0


@pytest.fixture
def sendable(tenant_a):
    """Template code with a free-text variable (the one a parameter could smuggle content into)."""
    make_sendable(tenant_a, signature="SafeShop")
    template = compliance.file_template(
        tenant=tenant_a,
        name="hello",
        message_type="verification",
        body="Hello ${name}, code ${code}.",
        variables={"name": {"kind": "text", "max_length": 40}, "code": {"kind": "code"}},
        actor=SYSTEM,
    )
    compliance.approve_template_version(version=template.versions.get(), actor=SYSTEM)
    connection.set_schema_to_public()
    return template.code


def rows(tenant) -> tuple[int, ...]:
    with tenant_context(tenant):
        counts = (SendRequest.objects.count(), Message.objects.count())
    connection.set_schema_to_public()
    return (
        *counts,
        Hold.objects.filter(tenant=tenant).count(),
        LedgerEntry.objects.filter(account__tenant=tenant).count(),
    )


def single(template, **extra):
    return {
        "signature": "SafeShop",
        "template": template,
        "params": {"name": "Li", "code": "1234"},
        "to": "+8613900001111",
        **extra,
    }


def assert_refused_and_nothing_stored(tenant, send, *, status: int, code: str | None = None):
    before = rows(tenant)
    response = send()
    assert response.status_code == status, response.content[:300]
    if code:
        assert response.json()["code"] == code
    assert set(response.json()) >= {"code", "message"}
    assert rows(tenant) == before
    return response


def test_batch_of_1001_recipients_is_400_batch_too_large_R_DLV_1(client_a, tenant_a, sendable):
    body = {
        "signature": "SafeShop",
        "template": sendable,
        "params": {"name": "Li", "code": "1"},
        "recipients": [f"+86139{n:08d}" for n in range(1001)],
    }
    response = assert_refused_and_nothing_stored(
        tenant_a, lambda: client_a.post("/api/v1/batches", body, format="json"), status=400
    )
    assert response.json()["code"] in ("validation_error", "batch_too_large")
    assert "1000" in json.dumps(response.json())


@pytest.mark.parametrize(
    "number",
    [
        "",
        "abc",
        "+",
        "+86",
        "+86" + "1" * 30,
        "+86 138 0013 8000\n0",
        "+8613800138000; DROP TABLE x",
        "\x00+8613800138000",
    ],
)
def test_malformed_single_number_is_refused_and_nothing_is_charged(client_a, tenant_a, sendable, number):
    before = rows(tenant_a)
    response = client_a.post("/api/v1/messages", single(sendable, to=number), format="json")
    assert response.status_code in (400, 422), response.content[:300]
    assert response.json()["code"]
    assert rows(tenant_a) == before  # a refused single send stores nothing: no request, message, hold or entry


def test_malformed_numbers_in_a_batch_are_rejected_per_recipient_and_not_charged(client_a, tenant_a, sendable):
    body = {
        "signature": "SafeShop",
        "template": sendable,
        "params": {"name": "Li", "code": "1234"},
        "recipients": ["abc", "+86", "+8613900002222", "1" * 19],
    }
    holds = Hold.objects.filter(tenant=tenant_a).count()
    response = client_a.post("/api/v1/batches", body, format="json")
    assert response.status_code == 202
    assert (response.json()["accepted"], response.json()["rejected"]) == (1, 3)
    assert Hold.objects.filter(tenant=tenant_a).count() == holds + 1


def test_invalid_utf8_body_is_400_malformed_request(client_a, tenant_a, sendable):
    body = json.dumps(single(sendable)).encode().replace(b"Li", b"L\xff\xfe\xc3")
    assert_refused_and_nothing_stored(
        tenant_a,
        lambda: client_a.generic("POST", "/api/v1/messages", body, content_type="application/json"),
        status=400,
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/api/v1/messages",
            '{"signature": "SafeShop", "template": "%s", "params": {"name": "\\ud800", "code": "1"}, "to": "+8613900001111"}',
        ),
        (
            "/api/v1/batches",
            '{"signature": "SafeShop", "template": "%s", "params": {"code": "1"}, "recipients": ["\\udfff"]}',
        ),
        (
            "/api/v1/batches",
            '{"signature": "SafeShop", "template": "%s", "params": {"code": "1", "\\ud83d": "x"}, '
            '"recipients": ["+8613900001111"]}',
        ),
    ],
)
def test_lone_surrogate_escape_is_400_malformed_request_not_a_500(client_a, tenant_a, sendable, path, body):
    """JSON may escape a lone UTF-16 surrogate; no UTF-8 text can hold one (it used to crash the
    request in PostgreSQL or in the response: a 500)."""
    assert_refused_and_nothing_stored(
        tenant_a,
        lambda: client_a.generic("POST", path, (body % sendable).encode(), content_type="application/json"),
        status=400,
        code="malformed_request",
    )


def test_escaped_surrogate_pair_is_an_ordinary_character(client_a, sendable):
    body = '{"signature": "SafeShop", "template": "%s", "params": {"name": "Li \\ud83d\\ude00", "code": "1"}, "to": "+8613900001111"}'
    response = client_a.generic("POST", "/api/v1/messages", (body % sendable).encode(), content_type="application/json")
    assert response.status_code in (202, 422), response.content[:300]  # an emoji: accepted or refused by the rules


def test_one_megabyte_parameter_is_refused_and_not_charged_R_CMP_2(client_a, tenant_a, sendable):
    before = rows(tenant_a)
    huge = "x" * 1_000_000
    response = client_a.post("/api/v1/messages", single(sendable, params={"name": huge, "code": "1234"}), format="json")
    assert response.status_code in (400, 422), response.content[:300]
    assert response.json()["code"] in ("validation_error", "invalid_parameter")
    assert rows(tenant_a)[2:] == before[2:]  # no hold, no ledger entry


def largest_row(tenant) -> int:
    """Size in bytes of the largest row (as text) of any table in the tenant's schema."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [tenant.schema_name])
        tables = [row[0] for row in cursor.fetchall()]
        sizes = []
        for table in tables:
            cursor.execute(f'SELECT coalesce(max(octet_length(t::text)), 0) FROM "{tenant.schema_name}"."{table}" t')  # noqa: S608
            sizes.append(cursor.fetchone()[0])
    return max(sizes)


def test_refused_single_send_with_a_one_megabyte_parameter_stores_nothing_of_it_R_DLV_1_R_AUD_3(
    client_a, tenant_a, sendable
):
    """Issue 7: a single send refused with 422 kept its request and message row, with the 1 MB
    parameter as sent. Now nothing is stored in the tenant schema; the operation trail keeps the
    refusal as a small summary (code, client_ref, SHA-256 of the body)."""
    from tenants.models import OperationRecord

    before = rows(tenant_a)
    body = single(sendable, params={"name": "x" * 1_000_000, "code": "1234"}, client_ref="huge-1")
    response = client_a.post("/api/v1/messages", body, format="json")
    assert response.status_code == 422, response.content[:300]
    assert response.json()["code"] == "invalid_parameter"
    assert len(response.content) < 2_000
    assert rows(tenant_a) == before
    assert largest_row(tenant_a) < 4_000
    record = OperationRecord.objects.get(tenant=tenant_a, action="delivery.send_single_refused")
    assert record.after["code"] == "invalid_parameter"
    assert record.after["client_ref"] == "huge-1"
    assert len(record.after["body_sha256"]) == 64
    assert len(json.dumps(record.after)) < 1_000


def test_refused_single_send_leaves_its_client_ref_free_R_DLV_1(client_a, tenant_a, sendable):
    refused = client_a.post("/api/v1/messages", single(sendable, to="12345", client_ref="ref-7"), format="json")
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_number")
    accepted = client_a.post("/api/v1/messages", single(sendable, client_ref="ref-7"), format="json")
    assert accepted.status_code == 202, accepted.content[:300]
    assert "Idempotent-Replay" not in accepted


def test_batch_keeps_only_a_summary_of_oversized_refused_parameters_R_AUD_1(client_a, tenant_a, sendable):
    """A batch stores its refused recipients as rejected messages (send log), but a refused
    parameter set above PARAMS_LOG_LIMIT is kept as size + SHA-256, not as sent."""
    huge = {"name": "y" * 1_000_000, "code": "1234"}
    body = {
        "signature": "SafeShop",
        "template": sendable,
        "params": huge,
        "recipients": ["+8613900003333", "+8613900004444", "+8613900005555"],
    }
    response = client_a.post("/api/v1/batches", body, format="json")
    assert response.status_code == 202, response.content[:300]
    assert (response.json()["accepted"], response.json()["rejected"]) == (0, 3)
    with tenant_context(tenant_a):
        stored = list(Message.objects.values_list("reason", "params"))
    connection.set_schema_to_public()
    assert [reason for reason, _ in stored] == ["invalid_parameter"] * 3
    encoded = json.dumps(huge, sort_keys=True, ensure_ascii=False).encode()
    assert {p["sha256"] for _, p in stored} == {hashlib.sha256(encoded).hexdigest()}
    assert {p["bytes"] for _, p in stored} == {len(encoded)}
    assert largest_row(tenant_a) < 4_000


def test_one_megabyte_query_parameter_is_a_clean_answer(client_a):
    response = client_a.get("/api/v1/messages", {"recipient": "1" * 1_000_000})
    assert response.status_code in (200, 400)


@pytest.mark.parametrize("payload", ["${code}", "{{ 7*7 }}", "{% debug %}", "${name}${name}", "%(code)s {0}"])
def test_template_syntax_inside_a_parameter_is_never_expanded_R_CMP_2(client_a, tenant_a, sendable, payload):
    response = client_a.post(
        "/api/v1/messages", single(sendable, params={"name": payload, "code": "1234"}), format="json"
    )
    if response.status_code == 202:  # accepted: the value appears literally, once
        with tenant_context(tenant_a):
            content = Message.objects.get(pk=response.json()["id"]).content
        assert f"Hello {payload}, code 1234." in content
        assert "49" not in content
    else:  # or refused by the variable's rules (a clear 4xx), never a 500
        assert 400 <= response.status_code < 500
        assert response.json()["code"]


def _signed(key_id: str, secret: str, *, path: str, body: bytes, nonce: str) -> dict:
    ts = str(int(time.time()))
    canonical = tenant_services.canonical_request(
        method="POST", path=path, query="", timestamp=ts, nonce=nonce, body=body
    )
    return {
        "HTTP_X_ACCESS_KEY_ID": key_id,
        "HTTP_X_TIMESTAMP": ts,
        "HTTP_X_NONCE": nonce,
        "HTTP_X_SIGNATURE": tenant_services.sign_request(secret=secret, canonical=canonical),
    }


def test_replayed_signed_send_is_401_nonce_reused_and_sends_nothing_R_TEN_2(client_a, tenant_a, sendable):
    body = json.dumps(single(sendable)).encode()
    headers = _signed(client_a.key_id, client_a.secret, path="/api/v1/messages", body=body, nonce=uuid.uuid4().hex)
    first = Client().post("/api/v1/messages", body, content_type="application/json", **headers)
    assert first.status_code == 202, first.content[:300]
    replay = assert_refused_and_nothing_stored(
        tenant_a,
        lambda: Client().post("/api/v1/messages", body, content_type="application/json", **headers),
        status=401,
    )
    assert replay.json()["code"] == "nonce_reused"


def test_signed_send_with_a_changed_body_is_401_and_sends_nothing_R_TEN_2(client_a, tenant_a, sendable):
    body = json.dumps(single(sendable)).encode()
    headers = _signed(client_a.key_id, client_a.secret, path="/api/v1/messages", body=body, nonce=uuid.uuid4().hex)
    tampered = body.replace(b"+8613900001111", b"+8613900009999")
    assert_refused_and_nothing_stored(
        tenant_a,
        lambda: Client().post("/api/v1/messages", tampered, content_type="application/json", **headers),
        status=401,
        code="signature_mismatch",
    )
