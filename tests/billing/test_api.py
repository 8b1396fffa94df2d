"""Customer billing API (R-BIL-6, R-BIL-7, R-BIL-8): balance, alert, ledger, statements, bills,
disputes, invoices; each tenant sees only its own account."""

from django.utils import timezone
from rest_framework.test import APIClient

from billing import services
from billing.models import PackageProduct

from .conftest import DELIVERY, FINANCE, fund, key, lines


def this_month() -> str:
    return timezone.localtime().strftime("%Y-%m")


def test_r_bil_7_balance_shows_cash_held_and_packages(client_a, tenant_a):
    fund(tenant_a, 1_000_000)
    product = PackageProduct.objects.create(name="Starter 100", segments=100, price=3_000_000, validity_days=30)
    services.buy_package(tenant=tenant_a, product=product, actor=FINANCE, idempotency_key=key())
    services.hold_messages(tenant=tenant_a, lines=lines(101), idempotency_key=key(), actor=DELIVERY)
    body = client_a.get("/api/v1/billing/balance").json()
    assert body["balance"] == 965_000
    assert body["held"] == 35_000
    assert body["package_segments"] == 0
    assert [(p["product"], p["segments_remaining"]) for p in body["packages"]] == [("Starter 100", 0)]


def test_r_bil_7_balance_is_per_tenant(client_a, client_b, tenant_a):
    fund(tenant_a, 1_000_000)
    assert client_a.get("/api/v1/billing/balance").json()["balance"] == 1_000_000
    assert client_b.get("/api/v1/billing/balance").json()["balance"] == 0


def test_r_bil_6_tenant_sets_the_threshold_and_webhook(client_a, tenant_a):
    response = client_a.put(
        "/api/v1/billing/alert", {"threshold": 5_000_000, "webhook_url": "https://example.com/h"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["threshold"] == 5_000_000
    assert len(response.json()["webhook_secret"]) == 64
    assert services.account_for(tenant_a).low_balance_threshold == 5_000_000


def test_r_bil_9_ledger_filters_by_kind_and_date(client_a, tenant_a):
    fund(tenant_a, 1_000_000)
    services.hold_messages(tenant=tenant_a, lines=lines(2), idempotency_key=key(), actor=DELIVERY)
    topups = client_a.get("/api/v1/billing/ledger", {"kind": "topup"}).json()["results"]
    assert [(e["kind"], e["amount"]) for e in topups] == [("topup", 1_000_000)]
    future = (timezone.now() + timezone.timedelta(days=1)).isoformat()
    assert client_a.get("/api/v1/billing/ledger", {"created_after": future}).json()["results"] == []
    assert len(client_a.get("/api/v1/billing/ledger").json()["results"]) == 2


def test_r_bil_7_monthly_statement_comes_from_the_ledger(client_a, tenant_a):
    fund(tenant_a, 10_000_000)
    holds = services.hold_messages(tenant=tenant_a, lines=lines(4, segments=2), idempotency_key=key(), actor=DELIVERY)
    services.capture_holds(
        captures=[
            services.Capture(hold_id=h.pk, carrier_message_id=f"M{h.pk}", submitted_at=timezone.now())
            for h in holds[:3]
        ],
        idempotency_key=key(),
    )
    services.penalty(tenant=tenant_a, amount=1_000_000, actor=FINANCE, reason="illegal message", idempotency_key=key())
    body = client_a.get(f"/api/v1/billing/statements/{this_month()}").json()
    assert body["opening"] == 0
    assert body["top_ups"] == 10_000_000
    assert body["charges"] == 3 * 70_000
    assert body["penalties"] == 1_000_000
    assert body["closing"] == 10_000_000 - 210_000 - 1_000_000
    assert body["closing_held"] == 70_000
    assert body["captured_messages"] == 3
    assert body["captured_segments"] == 6


def test_r_bil_8_detailed_bill_lists_captured_messages_with_carrier_ids(client_a, tenant_a):
    fund(tenant_a, 10_000_000)
    holds = services.hold_messages(tenant=tenant_a, lines=lines(2), idempotency_key=key(), actor=DELIVERY)
    services.capture_holds(
        captures=[services.Capture(hold_id=holds[0].pk, carrier_message_id="ABC123", submitted_at=timezone.now())],
        idempotency_key=key(),
    )
    rows = client_a.get(f"/api/v1/billing/statements/{this_month()}/messages").json()["results"]
    assert [(r["reference"], r["carrier_message_id"], r["unit_price"], r["amount"]) for r in rows] == [
        ("msg:0", "ABC123", 35_000, 35_000)
    ]
    assert rows[0]["submitted_at"] is not None


def test_r_bil_8_dispute_for_the_current_month_only(client_a):
    created = client_a.post(
        "/api/v1/billing/disputes", {"month": this_month(), "description": "100 missing"}, format="json"
    )
    assert created.status_code == 201, created.content
    refused = client_a.post("/api/v1/billing/disputes", {"month": "2020-01", "description": "old"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "dispute_refused"
    assert len(client_a.get("/api/v1/billing/disputes").json()["results"]) == 1


def test_r_bil_7_bad_month_is_404(client_a):
    assert client_a.get("/api/v1/billing/statements/2026-13").status_code == 404


def test_r_bil_7_billing_endpoints_are_in_the_openapi_schema(db):
    schema = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/v1/billing/balance",
        "/api/v1/billing/ledger",
        "/api/v1/billing/statements/{month}",
        "/api/v1/billing/statements/{month}/messages",
        "/api/v1/billing/disputes",
        "/api/v1/billing/alert",
    ):
        assert path in schema["paths"], path
