"""Issue 17: a single verification-code send in few statements, with per-process configuration
caches that never serve a change late (R-DLV-1, R-BIL-2, R-CMP-1/2, R-TEN-3)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Hold
from compliance.models import Signature
from delivery.models import OutboxEntry
from tenants import services as tenant_services
from tenants.models import OperationRecord

from .conftest import PRICE, _actor, make_sendable

# Statements per accepted single send, counted as bench/bench_api.py counts them in production
# (BEGIN and COMMIT included; inside a test the request's transaction is a savepoint pair
# instead, the same two statements). A client_ref costs one more: the idempotency lookup.
BUDGET = 15


@pytest.fixture
def sendable_a(tenant_a):
    return make_sendable(tenant_a)


def _single(template, to, **extra):
    return {"to": to, "signature": "DemoShop", "template": template, "params": {"code": "123456"}, **extra}


@pytest.fixture
def production_cache_age(settings):
    settings.CONFIG_CACHE_MAX_AGE_SECONDS = 60  # as deployed: one counter read per request


def test_accepted_single_send_stays_within_the_statement_budget_R_DLV_1(
    client_a, sendable_a, production_cache_age, django_assert_max_num_queries
):
    client_a.post("/api/v1/messages", _single(sendable_a, "13800138000"), format="json")  # fills the caches
    with django_assert_max_num_queries(BUDGET):
        response = client_a.post("/api/v1/messages", _single(sendable_a, "13800138001"), format="json")
    assert response.status_code == 202, response.json()
    with django_assert_max_num_queries(BUDGET + 1):
        response = client_a.post(
            "/api/v1/messages", _single(sendable_a, "13800138002", client_ref="b-1"), format="json"
        )
    assert response.status_code == 202, response.json()


def test_budgeted_send_keeps_hold_outbox_and_trail_R_BIL_2_R_AUD_3(
    client_a, tenant_a, sendable_a, production_cache_age
):
    client_a.post("/api/v1/messages", _single(sendable_a, "13800138000"), format="json")
    body = client_a.post("/api/v1/messages", _single(sendable_a, "13800138002", client_ref="k-2"), format="json").json()
    hold = Hold.objects.get(reference=f"{tenant_a.schema_name}:{body['id']}")
    assert (hold.state, hold.amount) == ("held", PRICE)
    assert OutboxEntry.objects.filter(tenant=tenant_a, message_ids=[body["id"]]).exists()
    record = OperationRecord.objects.filter(tenant=tenant_a, action="delivery.send_single").latest("id")
    assert record.after["client_ref"] == "k-2"
    again = client_a.post("/api/v1/messages", _single(sendable_a, "13800138002", client_ref="k-2"), format="json")
    assert again.json()["id"] == body["id"]  # idempotent client_ref, no second hold
    assert Hold.objects.filter(reference=f"{tenant_a.schema_name}:{body['id']}").count() == 1


def test_revoked_signature_refuses_the_next_send_despite_the_cache_R_CMP_1(
    client_a, tenant_a, sendable_a, production_cache_age
):
    assert client_a.post("/api/v1/messages", _single(sendable_a, "13800138000"), format="json").status_code == 202
    Signature.objects.filter(tenant=tenant_a, text="DemoShop").update(status="rejected")
    response = client_a.post("/api/v1/messages", _single(sendable_a, "13800138003"), format="json")
    assert response.status_code in (403, 422), response.json()
    assert response.json()["code"] == "signature_not_approved"


def test_suspended_tenant_is_refused_at_once_despite_the_cache_R_TEN_3(
    client_a, tenant_a, sendable_a, production_cache_age
):
    assert client_a.post("/api/v1/messages", _single(sendable_a, "13800138000"), format="json").status_code == 202
    tenant_services.suspend_tenant(tenant=tenant_a, actor=_actor("operator"), reason="test")
    response = client_a.post("/api/v1/messages", _single(sendable_a, "13800138004"), format="json")
    assert response.status_code == 403, response.json()


def test_revoked_key_is_refused_at_once_despite_the_cache_R_TEN_2(client_a, tenant_a, sendable_a, production_cache_age):
    from tenants.models import ApiKey

    assert client_a.post("/api/v1/messages", _single(sendable_a, "13800138000"), format="json").status_code == 202
    key = ApiKey.objects.get(access_key_id=client_a.key_id)
    tenant_services.revoke_api_key(key=key, actor=_actor("operator"), reason="test")
    response = client_a.post("/api/v1/messages", _single(sendable_a, "13800138005"), format="json")
    assert response.status_code == 401


def test_a_new_price_applies_from_its_effective_time_R_BIL_4(client_a, tenant_a, sendable_a, production_cache_age):
    from billing.models import Price

    first = client_a.post("/api/v1/messages", _single(sendable_a, "13800138000"), format="json").json()
    price = Price.objects.get(pk=Price.objects.filter(unit_price=PRICE).latest("id").pk)
    Price.objects.filter(pk=price.pk).update(unit_price=PRICE * 2)
    second = client_a.post("/api/v1/messages", _single(sendable_a, "13800138006"), format="json").json()
    assert (first["unit_price"], second["unit_price"]) == (PRICE, PRICE * 2)


def test_statement_count_is_measured_in_production_terms(client_a, sendable_a, production_cache_age):
    client_a.post("/api/v1/messages", _single(sendable_a, "13800138000"), format="json")
    with CaptureQueriesContext(connection) as queries:
        client_a.post("/api/v1/messages", _single(sendable_a, "13800138007"), format="json")
    statements = [q["sql"] for q in queries.captured_queries]
    assert sum(s.startswith("SET search_path") for s in statements) <= 2  # public, then the tenant
    assert sum("smsplatform_configversion" in s for s in statements) == 1  # one counter read


def test_search_path_is_set_again_after_a_rollback_undid_it(tenant_a, tenant_b):
    """TENANT_LIMIT_SET_CALLS sets the path once per schema switch; a rolled-back SET must not
    leave the connection in another schema than the one Django believes in."""
    from django.db import transaction

    def path():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('search_path')")
            return cursor.fetchone()[0]

    connection.set_tenant(tenant_a)
    assert path().startswith(tenant_a.schema_name)
    sid = transaction.savepoint()
    connection.set_tenant(tenant_b)
    assert path().startswith(tenant_b.schema_name)
    transaction.savepoint_rollback(sid)  # PostgreSQL reverts the SET to tenant_a's path
    assert path().startswith(tenant_b.schema_name)  # Django still means tenant_b: set again
