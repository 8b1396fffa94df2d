"""R-CMP-8 per-recipient frequency limits at intake, on our API (the Alibaba endpoint goes through
the same intake: tests/alibaba/test_sdk.py)."""

import pytest

from compliance import frequency
from compliance.models import FrequencyLimit
from tenants.models import OperationRecord

pytestmark = pytest.mark.usefixtures("frequency_on")


def _single(client, code, to="+8613800138000"):
    return client.post(
        "/api/v1/messages",
        {"signature": "DemoShop", "template": code, "params": {"code": "1234"}, "to": to},
        format="json",
    )


def _batch(client, code, numbers):
    return client.post(
        "/api/v1/batches",
        {"signature": "DemoShop", "template": code, "params": {"code": "1234"}, "recipients": numbers},
        format="json",
    )


def test_second_verification_code_within_a_minute_is_refused_R_CMP_8(sendable):
    tenant, client, code = sendable
    assert _single(client, code).status_code == 202
    refused = _single(client, code)
    assert refused.status_code == 422
    assert refused.json()["code"] == "frequency_limited"
    assert "1 a minute" in refused.json()["message"]
    assert _single(client, code, to="+8613800138001").status_code == 202  # per recipient


def test_repeated_number_in_one_batch_is_refused_after_its_limit_R_CMP_8(sendable):
    tenant, client, code = sendable
    numbers = [f"+861390000{n:04d}" for n in range(50)] + ["+8613900000007"]
    body = _batch(client, code, numbers).json()
    assert body["accepted"] == 50
    assert [m["reason"] for m in body["messages"] if m["status"] == "rejected"] == ["frequency_limited"]


def test_tenant_row_replaces_the_platform_default_R_CMP_8(sendable):
    tenant, client, code = sendable
    FrequencyLimit.objects.create(tenant=tenant, message_type="verification", per_minute=3)
    assert [_single(client, code).status_code for _ in range(4)] == [202, 202, 202, 422]


def test_hour_and_day_windows_apply_too_R_CMP_8(sendable):
    tenant, client, code = sendable
    FrequencyLimit.objects.create(tenant=tenant, message_type="verification", per_minute=None, per_hour=2, per_day=9)
    assert [_single(client, code).status_code for _ in range(3)] == [202, 202, 422]


def test_types_without_a_limit_are_not_counted_R_CMP_8(make_tenant):
    from ..delivery.flow.conftest import make_sendable

    tenant = make_tenant("Notify Co.")
    make_sendable(tenant, body="Your parcel ${code} is out.", message_type="notification")
    reservation = frequency.reserve(tenant=tenant, message_type="notification", numbers=["+8613800138000"] * 20)
    assert reservation.refused == set()
    assert reservation.counted_keys == []


def test_a_request_refused_for_balance_does_not_use_up_the_limit_R_CMP_8_R_BIL_1(make_tenant):
    from billing import services as billing
    from tenants import services as tenant_services
    from tenants.services import Actor

    from ..conftest import KeyedClient
    from ..delivery.flow.conftest import make_sendable
    from .conftest import clear_frequency_counters

    tenant = make_tenant("Broke Co.")
    code = make_sendable(tenant, balance=0)
    clear_frequency_counters(tenant)
    key, secret = tenant_services.issue_api_key(tenant=tenant, actor=Actor.system("t"))
    client = KeyedClient(tenant, key.access_key_id, secret)
    assert _single(client, code).status_code == 402
    billing.topup(tenant=tenant, amount=10_000_000, actor=Actor.system("t"), idempotency_key=f"t:{tenant.pk}")
    assert _single(client, code).status_code == 202


def test_operators_edit_limits_through_the_trail_and_tenants_read_them_R_CMP_8_R_AUD_3(sendable):
    from tenants.services import Actor

    tenant, client, code = sendable
    row = frequency.save_frequency_limit(
        limit=FrequencyLimit(tenant=tenant, message_type="marketing", per_day=2), actor=Actor.system("op")
    )
    assert OperationRecord.objects.filter(action="compliance.frequency_limit.save", object_id=str(row.pk)).exists()
    body = client.get("/api/v1/frequency-limits").json()["results"]
    by_type = {r["message_type"]: r for r in body}
    assert by_type["verification"] == {
        "message_type": "verification",
        "per_minute": 1,
        "per_hour": 5,
        "per_day": 10,
        "tenant_specific": False,
    }
    assert by_type["marketing"]["per_day"] == 2
    assert by_type["marketing"]["tenant_specific"] is True
