"""R-BIL-5 refunds, R-BIL-7 invoices, R-BIL-8 disputes."""

from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from billing import selectors, services
from billing.models import DisputeState, EntryKind, PackageProduct, RefundState
from tenants.models import OperationRecord

from .conftest import DELIVERY, FINANCE, fund, key, lines


def test_r_bil_5_platform_ending_service_refunds_the_remaining_cash(tenant):
    fund(tenant, 10_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(10), idempotency_key=key(), actor=DELIVERY)
    services.capture_holds(
        captures=[services.Capture(hold_id=h.pk, carrier_message_id="x", submitted_at=timezone.now()) for h in holds],
        idempotency_key=key(),
    )
    refund = services.request_refund(
        tenant=tenant, cause="platform_ended", actor=FINANCE, reason="product retired", idempotency_key=key()
    )
    assert refund.state == RefundState.COMPLETED
    assert refund.amount == 10_000_000 - 350_000  # less what was used
    assert refund.entry.kind == EntryKind.REFUND
    assert selectors.balance_of(tenant=tenant) == 0
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.refund").exists()


@pytest.mark.parametrize("cause", ["customer_ended", "violation"])
def test_r_bil_5_no_refund_when_customer_ended_or_violation(tenant, cause):
    fund(tenant, 10_000_000)
    with pytest.raises(services.RefundRefused):
        services.request_refund(tenant=tenant, cause=cause, actor=FINANCE, reason="x", idempotency_key=key())
    assert selectors.balance_of(tenant=tenant) == 10_000_000


def test_r_bil_3_r_bil_5_platform_breach_refunds_the_unused_value_of_packages_with_the_balance(tenant):
    """Issue 18 item 8: when the platform ends service or is in breach, unused package value
    (less what was used) is refunded with the balance."""
    product = PackageProduct.objects.create(name="p", segments=100, price=3_000_000, validity_days=30)
    grant = services.buy_package(tenant=tenant, product=product, actor=FINANCE, idempotency_key=key())
    fund(tenant, 1_000_000)
    services.hold_messages(tenant=tenant, lines=lines(1, segments=40), idempotency_key=key(), actor=FINANCE)
    refund = services.request_refund(
        tenant=tenant, cause="platform_breach", actor=FINANCE, reason="outage", idempotency_key=key()
    )
    grant.refresh_from_db()
    # 60 of 100 segments unused: 60% of 3 CNY, plus the 1 CNY cash balance.
    assert refund.amount == 1_000_000 + 1_800_000
    assert (grant.state, grant.segments_remaining) == ("refunded", 0)
    assert selectors.balance_of(tenant=tenant) == 0


def test_r_bil_3_packages_are_not_refunded_when_the_customer_ends(tenant):
    product = PackageProduct.objects.create(name="p", segments=100, price=3_000_000, validity_days=30)
    grant = services.buy_package(tenant=tenant, product=product, actor=FINANCE, idempotency_key=key())
    with pytest.raises(services.RefundRefused):
        services.request_refund(tenant=tenant, cause="customer_ended", actor=FINANCE, reason="x", idempotency_key=key())
    grant.refresh_from_db()
    assert grant.segments_remaining == 100


def test_r_bil_5_refund_waits_for_issued_invoices_to_return(tenant):
    entry = fund(tenant, 10_000_000)
    invoice = services.issue_invoice(entry=entry, number=key("INV"), amount=10_000_000, actor=FINANCE)
    refund = services.request_refund(
        tenant=tenant, cause="platform_ended", actor=FINANCE, reason="ends", idempotency_key=key()
    )
    assert refund.state == RefundState.WAITING_INVOICES
    assert selectors.balance_of(tenant=tenant) == 10_000_000
    services.return_invoice(invoice=invoice, actor=FINANCE)
    refund.refresh_from_db()
    assert refund.state == RefundState.COMPLETED
    assert refund.amount == 10_000_000
    assert selectors.balance_of(tenant=tenant) == 0


def test_r_bil_5_same_refund_key_refunds_once(tenant):
    fund(tenant, 10_000_000)
    k = key()
    first = services.request_refund(tenant=tenant, cause="platform_ended", actor=FINANCE, reason="", idempotency_key=k)
    fund(tenant, 5_000_000)
    again = services.request_refund(tenant=tenant, cause="platform_ended", actor=FINANCE, reason="", idempotency_key=k)
    assert again.pk == first.pk
    assert selectors.balance_of(tenant=tenant) == 5_000_000


def test_r_bil_7_invoices_cannot_exceed_the_topup(tenant):
    entry = fund(tenant, 10_000_000)
    services.issue_invoice(entry=entry, number=key("INV"), amount=6_000_000, actor=FINANCE)
    with pytest.raises(services.InvoiceRefused):
        services.issue_invoice(entry=entry, number=key("INV"), amount=5_000_000, actor=FINANCE)


def test_r_bil_8_dispute_only_for_the_current_month(tenant):
    now = timezone.now()
    this_month = selectors.month_bounds(timezone.localtime(now).year, timezone.localtime(now).month)[0].date()
    dispute = services.open_dispute(tenant=tenant, month=this_month, description="count differs", actor=FINANCE)
    assert dispute.state == DisputeState.OPEN
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    with pytest.raises(services.DisputeRefused):
        services.open_dispute(tenant=tenant, month=last_month, description="too late", actor=FINANCE)


def test_r_bil_8_compensation_capped_at_10_percent_of_month_usage(tenant):
    fund(tenant, 100_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(100), idempotency_key=key(), actor=DELIVERY)  # 3.5 CNY
    services.capture_holds(
        captures=[services.Capture(hold_id=h.pk, carrier_message_id="x", submitted_at=timezone.now()) for h in holds],
        idempotency_key=key(),
    )
    month = date(timezone.localtime().year, timezone.localtime().month, 1)
    dispute = services.open_dispute(tenant=tenant, month=month, description="missing receipts", actor=FINANCE)
    with pytest.raises(services.CompensationTooHigh):
        services.resolve_dispute(dispute=dispute, compensation=350_001, resolution="x", actor=FINANCE)
    resolved = services.resolve_dispute(dispute=dispute, compensation=350_000, resolution="10 lost", actor=FINANCE)
    assert resolved.state == DisputeState.RESOLVED
    assert resolved.entry.amount == 350_000
    assert selectors.balance_of(tenant=tenant) == 100_000_000 - 3_500_000 + 350_000


def test_r_bil_8_month_boundaries_follow_the_platform_time_zone():
    start, end = selectors.month_bounds(2026, 12)
    assert start == datetime(2026, 12, 1, tzinfo=timezone.get_default_timezone())
    assert end == datetime(2027, 1, 1, tzinfo=timezone.get_default_timezone())
