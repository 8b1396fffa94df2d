"""Issue 12, items 2, 4-8: what gets booked follows the rules of money: type-limited packages
(R-BIL-3), per-package idle expiry (R-BIL-3), refunds and forfeits that settle in-flight holds
(R-BIL-5, R-CMP-6), the dispute cap per month (R-BIL-8), receivables (R-CMP-6), held-for-review
timeout (R-BIL-2) and currency (R-BIL-1)."""

from datetime import date, timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing import selectors, services
from billing.models import (
    Account,
    DormancyCase,
    DormancyKind,
    EntryKind,
    Hold,
    HoldState,
    PackageGrant,
    PackageProduct,
    PackageState,
    Price,
    Receivable,
    ReceivableState,
)
from tenants.models import OperationRecord

from .conftest import DELIVERY, FINANCE, fund, key, lines

PRICE = 35_000
DAY = timedelta(days=1)


def this_month():
    now = timezone.localtime()
    return date(now.year, now.month, 1)


def package(tenant, segments, *, types=(), price=0):
    product = PackageProduct.objects.create(
        name=f"p{segments}", segments=segments, price=price, validity_days=30, message_types=list(types)
    )
    return services.buy_package(tenant=tenant, product=product, actor=FINANCE, idempotency_key=key())


# --- packages (item 2, R-BIL-3) ------------------------------------------------------------------------


def test_r_bil_3_a_verification_only_package_pays_for_verification_messages(tenant):
    grant = package(tenant, 100, types=["verification"])
    fund(tenant, 1_000_000)
    [hold] = services.hold_messages(
        tenant=tenant, lines=lines(1, message_type="verification"), idempotency_key=key(), actor=DELIVERY
    )
    grant.refresh_from_db()
    assert (hold.package_segments, hold.amount, grant.segments_remaining) == (1, 0, 99)


def test_r_bil_3_type_limited_package_is_used_before_an_any_type_package(tenant):
    general = package(tenant, 10)
    general.expires_at = timezone.now() + 2 * DAY  # expires sooner, still second for its type
    general.save(update_fields=["expires_at"])
    limited = package(tenant, 10, types=["verification"])
    services.hold_messages(
        tenant=tenant, lines=lines(1, segments=3, message_type="verification"), idempotency_key=key(), actor=DELIVERY
    )
    general.refresh_from_db()
    limited.refresh_from_db()
    assert (limited.segments_remaining, general.segments_remaining) == (7, 10)


def test_r_bil_3_the_send_path_passes_the_message_type_to_the_hold():
    """delivery/intake.py _store_accepted builds each HoldLine with the checked message type."""
    import inspect

    from delivery import intake

    source = inspect.getsource(intake._store_accepted)
    assert "message_type=hold_type" in source


def test_r_bil_3_idle_expiry_runs_per_package_and_spares_one_bought_after_the_notice(tenant):
    fund(tenant, 1_000_000)
    old = package(tenant, 10)
    now = timezone.now()
    PackageGrant.objects.filter(pk=old.pk).update(starts_at=now - 200 * DAY, expires_at=now + 400 * DAY)
    services.scan_dormancy(now=now)
    case = DormancyCase.objects.get(tenant=tenant, kind=DormancyKind.PACKAGE_IDLE)
    assert case.package_id == old.pk
    fresh = package(tenant, 10)  # bought after the notice
    PackageGrant.objects.filter(pk=fresh.pk).update(expires_at=now + 400 * DAY)
    services.act_on_dormancy(now=now + 31 * DAY)
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.state, old.segments_remaining) == (PackageState.EXPIRED, 0)
    assert (fresh.state, fresh.segments_remaining) == (PackageState.ACTIVE, 10)


# --- refunds and forfeits (item 4, R-BIL-5, R-CMP-6) ---------------------------------------------


def test_r_bil_5_a_tenant_terminated_for_a_violation_gets_no_refund_whatever_the_cause(tenant):
    from compliance import services as compliance

    fund(tenant, 1_000_000)
    compliance.terminate(tenant=tenant, actor=FINANCE, reason="fraud messages")
    with pytest.raises(services.RefundRefused):
        services.request_refund(
            tenant=tenant, cause="platform_ended", actor=FINANCE, reason="ends", idempotency_key=key()
        )


def test_r_cmp_6_releasing_an_in_flight_hold_after_a_forfeit_puts_no_money_back(tenant):
    fund(tenant, 1_000_000)
    [hold] = services.hold_messages(
        tenant=tenant, lines=lines(1, unit_price=1_000_000), idempotency_key=key(), actor=DELIVERY
    )
    services.forfeit(tenant=tenant, actor=FINANCE, reason="violation", idempotency_key=key())
    services.release_holds(hold_ids=[hold.pk], idempotency_key=key("rel"), reason="failed")
    assert selectors.balance_of(tenant=tenant) == 0
    account = services.account_for(tenant)
    assert selectors.ledger_is_consistent(account=account)
    assert account.entries.filter(kind=EntryKind.FORFEIT).count() == 2  # the forfeit and its sweep


def test_r_bil_5_releasing_after_a_refund_refunds_the_released_money(tenant):
    fund(tenant, 2_000_000)
    [hold] = services.hold_messages(
        tenant=tenant, lines=lines(1, unit_price=1_000_000), idempotency_key=key(), actor=DELIVERY
    )
    services.request_refund(tenant=tenant, cause="platform_ended", actor=FINANCE, reason="ends", idempotency_key=key())
    services.capture_holds(
        captures=[services.Capture(hold.pk, "c", timezone.now())], idempotency_key=key("cap")
    )  # in flight: the carrier took it, it is charged
    assert selectors.balance_of(tenant=tenant) == 0
    [later] = services.hold_messages(tenant=tenant, lines=lines(1, unit_price=0), idempotency_key=key(), actor=DELIVERY)
    services.release_holds(hold_ids=[later.pk], idempotency_key=key("rel"))
    assert selectors.ledger_is_consistent(account=services.account_for(tenant))


def test_r_bil_5_partly_refused_in_flight_message_after_refund_refunds_the_refused_parts(tenant):
    fund(tenant, 1_000_000)
    [hold] = services.hold_messages(tenant=tenant, lines=lines(1, segments=3), idempotency_key=key(), actor=DELIVERY)
    refund = services.request_refund(
        tenant=tenant, cause="platform_ended", actor=FINANCE, reason="ends", idempotency_key=key()
    )
    assert refund.amount == 1_000_000 - 3 * PRICE
    services.capture_holds(captures=[services.Capture(hold.pk, "c", timezone.now(), segments=1)], idempotency_key=key())
    assert selectors.balance_of(tenant=tenant) == 0
    assert services.account_for(tenant).entries.filter(kind=EntryKind.REFUND).count() == 2


# --- disputes (item 5, R-BIL-8) ---------------------------------------------------------------------


def _use(tenant, n, *, types=()):
    holds = services.hold_messages(
        tenant=tenant, lines=lines(n, message_type="verification"), idempotency_key=key(), actor=DELIVERY
    )
    services.capture_holds(captures=[services.Capture(h.pk, "x", timezone.now()) for h in holds], idempotency_key=key())


def test_r_bil_8_the_10_percent_cap_is_per_month_across_disputes(tenant):
    fund(tenant, 100_000_000)
    _use(tenant, 100)  # 3.5 CNY: cap 0.35 CNY for the month
    for _ in range(2):
        dispute = services.open_dispute(tenant=tenant, month=this_month(), description="lost", actor=FINANCE)
        services.resolve_dispute(dispute=dispute, compensation=150_000, resolution="x", actor=FINANCE)
    third = services.open_dispute(tenant=tenant, month=this_month(), description="lost", actor=FINANCE)
    with pytest.raises(services.CompensationTooHigh) as refused:
        services.resolve_dispute(dispute=third, compensation=150_000, resolution="x", actor=FINANCE)
    assert refused.value.details["left"] == 50_000
    services.resolve_dispute(dispute=third, compensation=50_000, resolution="the rest", actor=FINANCE)
    paid = 350_000
    assert selectors.balance_of(tenant=tenant) == 100_000_000 - 3_500_000 + paid  # 10%, not 3 × 15%


def test_r_bil_8_package_paid_usage_counts_at_its_price(tenant):
    package(tenant, 100, types=["verification"])
    _use(tenant, 100)  # all from the package, worth 100 × 35,000
    assert selectors.month_usage(account=services.account_for(tenant), month=this_month()) == 3_500_000
    dispute = services.open_dispute(tenant=tenant, month=this_month(), description="lost", actor=FINANCE)
    services.resolve_dispute(dispute=dispute, compensation=350_000, resolution="ok", actor=FINANCE)
    assert selectors.balance_of(tenant=tenant) == 350_000


# --- receivables (item 6, R-CMP-6) ------------------------------------------------------------------


def test_r_cmp_6_a_penalty_beyond_the_balance_is_a_receivable_collected_from_the_next_topup(tenant):
    fund(tenant, 1_000_000)
    services.penalty(tenant=tenant, amount=5_000_000, actor=FINANCE, reason="illegal message", idempotency_key=key())
    receivable = Receivable.objects.get(account__tenant=tenant)
    assert (receivable.amount, receivable.state) == (4_000_000, ReceivableState.OPEN)
    now = timezone.localtime()
    assert (
        selectors.statement_for(tenant=tenant, year=now.year, month=now.month)["receivables_outstanding"] == 4_000_000
    )
    fund(tenant, 3_000_000)
    assert selectors.balance_of(tenant=tenant) == 0
    fund(tenant, 3_000_000)
    receivable.refresh_from_db()
    assert (receivable.collected, receivable.state) == (4_000_000, ReceivableState.SETTLED)
    assert selectors.balance_of(tenant=tenant) == 2_000_000
    statement = selectors.statement_for(tenant=tenant, year=now.year, month=now.month)
    assert statement["collections"] == 4_000_000
    assert statement["receivables_outstanding"] == 0
    assert statement["closing"] == (
        statement["opening"] + statement["top_ups"] - statement["penalties"] - statement["collections"]
    )


# --- held for review (item 7) --------------------------------------------------------------------------


def test_r_bil_2_money_held_for_a_message_nobody_reviewed_is_released_after_72_hours(tenant):
    from delivery.held import release_stale_held_messages
    from delivery.models import Message, SendRequest

    fund(tenant, 1_000_000)
    [hold] = services.hold_messages(tenant=tenant, lines=lines(1), idempotency_key=key(), actor=DELIVERY)
    now = timezone.now()
    with tenant_context(tenant):
        request = SendRequest.objects.create(kind="single", body_hash="h" * 64, total=1, accepted=1)
        message = Message.objects.create(
            request=request, recipient="+8613800000009", segments=1, hold_id=hold.pk, status="held", status_at=now
        )
    assert release_stale_held_messages(now=now + 71 * timedelta(hours=1), tenant_ids=[tenant.pk]) == 0
    assert release_stale_held_messages(now=now + 73 * timedelta(hours=1), tenant_ids=[tenant.pk]) == 1
    with tenant_context(tenant):
        message.refresh_from_db()
    assert (message.status, message.reason) == ("cancelled", "review_timeout")
    assert Hold.objects.get(pk=hold.pk).state == HoldState.RELEASED
    assert selectors.balance_of(tenant=tenant) == 1_000_000
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.held_review_timeout").exists()


# --- currency (item 8, R-BIL-1) -----------------------------------------------------------------------


def test_r_bil_1_a_booking_in_another_currency_is_refused(tenant):
    fund(tenant, 1_000_000)
    with pytest.raises(services.CurrencyMismatch):
        services.topup(tenant=tenant, amount=1, actor=FINANCE, idempotency_key=key(), currency="USD")
    plan = services.default_plan()
    usd = services.announce_price(
        plan=plan, message_type="international", country="US", unit_price=10_000, actor=FINANCE, currency="USD"
    )
    line = services.HoldLine(reference="x", segments=1, unit_price=10_000, price_id=usd.pk)
    with pytest.raises(services.CurrencyMismatch):
        services.hold_messages(tenant=tenant, lines=[line], idempotency_key=key(), actor=DELIVERY)
    product = PackageProduct.objects.create(name="usd", segments=1, price=1, validity_days=1, currency="USD")
    with pytest.raises(services.CurrencyMismatch):
        services.buy_package(tenant=tenant, product=product, actor=FINANCE, idempotency_key=key())
    assert selectors.balance_of(tenant=tenant) == 1_000_000
    assert Price.objects.get(pk=usd.pk).currency == "USD"


def test_r_bil_7_statements_use_the_account_currency(tenant):
    services.account_for(tenant)
    Account.objects.filter(tenant=tenant).update(currency="HKD")
    now = timezone.localtime()
    assert selectors.statement_for(tenant=tenant, year=now.year, month=now.month)["currency"] == "HKD"
