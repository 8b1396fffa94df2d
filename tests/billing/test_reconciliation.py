"""R-BIL-8: the reconciliation report puts submitted, carrier-accepted, delivered and billed side by
side; billed segments equal carrier-accepted segments (no short-counting, no over-billing)."""

from django.utils import timezone
from django_tenants.utils import tenant_context

from billing import services
from delivery.models import Message, SendRequest

from ..conftest import SYSTEM

PRICE = 35_000


def accept(tenant, segments_list):
    """Messages accepted as the send path does it: one hold per message, rows in the tenant schema."""
    lines = [
        services.HoldLine(reference=f"recon:{i}", segments=s, unit_price=PRICE) for i, s in enumerate(segments_list)
    ]
    holds = services.hold_messages(tenant=tenant, lines=lines, idempotency_key=f"recon-{tenant.pk}", actor=SYSTEM)
    now = timezone.now()
    with tenant_context(tenant):
        request = SendRequest.objects.create(kind="batch", body_hash="r" * 64, total=len(holds), accepted=len(holds))
        messages = [
            Message.objects.create(
                request=request,
                recipient=f"+86138000000{i:02d}",
                segments=hold.segments,
                unit_price=PRICE,
                amount=hold.amount,
                hold_id=hold.pk,
                status="accepted",
                status_at=now,
            )
            for i, hold in enumerate(holds)
        ]
    return messages, holds


def carrier_accepts(tenant, message, hold, *, delivered: bool):
    now = timezone.now()
    with tenant_context(tenant):
        Message.objects.filter(pk=message.pk).update(submitted_at=now, status="delivered" if delivered else "submitted")
    services.capture_holds(
        captures=[services.Capture(hold.pk, f"cid-{hold.pk}", now)], idempotency_key=f"cap-{hold.pk}"
    )


def month_path():
    return f"/api/v1/billing/reconciliation/{timezone.localtime():%Y-%m}"


def test_report_shows_each_stage_and_billed_equals_carrier_accepted(tenant_a, client_a):
    services.topup(tenant=tenant_a, amount=10_000_000, actor=SYSTEM, idempotency_key="recon-topup")
    messages, holds = accept(tenant_a, [1, 2, 1])
    carrier_accepts(tenant_a, messages[0], holds[0], delivered=True)
    carrier_accepts(tenant_a, messages[1], holds[1], delivered=False)
    # The third failed before the carrier accepted it: released, never billed (R-BIL-2).
    services.release_holds(hold_ids=[holds[2].pk], idempotency_key="recon-release")

    report = client_a.get(month_path()).json()
    assert report["submitted"] == 3
    assert report["submitted_segments"] == 4
    assert report["carrier_accepted"] == 2
    assert report["carrier_accepted_segments"] == 3
    assert report["delivered"] == 1
    assert report["billed"] == 2
    assert report["billed_segments"] == 3
    assert report["billed_amount"] == 3 * PRICE
    assert report["matches"] is True


def test_report_exposes_a_carrier_accepted_message_left_unbilled(tenant_a, client_a):
    services.topup(tenant=tenant_a, amount=10_000_000, actor=SYSTEM, idempotency_key="recon-topup-2")
    messages, _ = accept(tenant_a, [1])
    with tenant_context(tenant_a):
        Message.objects.filter(pk=messages[0].pk).update(submitted_at=timezone.now(), status="submitted")
    report = client_a.get(month_path()).json()
    assert report["carrier_accepted_segments"] == 1
    assert report["billed_segments"] == 0
    assert report["matches"] is False


def test_report_is_per_tenant(tenant_a, client_b):
    services.topup(tenant=tenant_a, amount=10_000_000, actor=SYSTEM, idempotency_key="recon-topup-3")
    accept(tenant_a, [1, 1])
    report = client_b.get(month_path()).json()
    assert report["submitted"] == 0
