"""R-BIL-2: hold at acceptance, capture at carrier acceptance, release on failure before it;
batch-friendly (one lock, O(1) queries) and idempotent per hold. R-BIL-3 packages first."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import selectors, services
from billing.models import Account, EntryKind, Hold, HoldState, LedgerEntry, PackageGrant, PackageProduct

from .conftest import DELIVERY, FINANCE, fund, key, lines


def captures_for(holds, prefix="cm"):
    now = timezone.now()
    return [services.Capture(hold_id=h.pk, carrier_message_id=f"{prefix}{h.pk:x}", submitted_at=now) for h in holds]


def test_r_bil_2_hold_moves_cash_from_balance_to_held(tenant):
    fund(tenant, 1_000_000)
    holds = services.hold_messages(
        tenant=tenant, lines=lines(3, segments=2, unit_price=35_000), idempotency_key=key(), actor=DELIVERY
    )
    assert [h.amount for h in holds] == [70_000] * 3
    assert all(h.state == HoldState.HELD for h in holds)
    account = Account.objects.get(tenant=tenant)
    assert (account.balance, account.held) == (790_000, 210_000)
    assert selectors.ledger_is_consistent(account=account)


def test_r_bil_1_insufficient_balance_refuses_the_whole_batch(tenant):
    fund(tenant, 100_000)
    with pytest.raises(services.InsufficientBalance) as excinfo:
        services.hold_messages(tenant=tenant, lines=lines(3, unit_price=35_000), idempotency_key=key(), actor=DELIVERY)
    assert excinfo.value.code == "insufficient_balance"
    assert excinfo.value.http_status == 402
    assert not Hold.objects.filter(tenant=tenant).exists()
    assert selectors.balance_of(tenant=tenant) == 100_000


def test_r_bil_2_same_key_returns_the_first_holds_and_moves_no_money(tenant):
    fund(tenant, 1_000_000)
    k = key()
    first = services.hold_messages(tenant=tenant, lines=lines(2), idempotency_key=k, actor=DELIVERY)
    again = services.hold_messages(tenant=tenant, lines=lines(2), idempotency_key=k, actor=DELIVERY)
    assert [h.pk for h in again] == [h.pk for h in first]
    assert LedgerEntry.objects.filter(account__tenant=tenant, kind=EntryKind.HOLD).count() == 1
    assert selectors.balance_of(tenant=tenant) == 1_000_000 - 70_000


def test_r_bil_2_capture_bills_and_keeps_carrier_id_and_submit_time(tenant):
    fund(tenant, 1_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(2), idempotency_key=key(), actor=DELIVERY)
    assert services.capture_holds(captures=captures_for(holds), idempotency_key=key()) == 2
    captured = Hold.objects.get(pk=holds[0].pk)
    assert captured.state == HoldState.CAPTURED
    assert captured.carrier_message_id == f"cm{holds[0].pk:x}"
    assert captured.submitted_at is not None
    account = Account.objects.get(tenant=tenant)
    assert (account.balance, account.held) == (930_000, 0)
    assert selectors.ledger_is_consistent(account=account)


def test_r_bil_2_capture_twice_captures_once(tenant):
    fund(tenant, 1_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(2), idempotency_key=key(), actor=DELIVERY)
    assert services.capture_holds(captures=captures_for(holds[:1]), idempotency_key=key()) == 1
    assert services.capture_holds(captures=captures_for(holds), idempotency_key=key()) == 1
    assert services.capture_holds(captures=captures_for(holds), idempotency_key=key()) == 0
    assert LedgerEntry.objects.filter(account__tenant=tenant, kind=EntryKind.CAPTURE).count() == 2


def test_r_bil_2_release_returns_cash_and_released_hold_cannot_be_captured(tenant):
    fund(tenant, 1_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(2), idempotency_key=key(), actor=DELIVERY)
    assert services.release_holds(hold_ids=[holds[0].pk], idempotency_key=key(), reason="route failed") == 1
    assert services.release_holds(hold_ids=[holds[0].pk], idempotency_key=key()) == 0
    assert services.capture_holds(captures=captures_for(holds[:1]), idempotency_key=key()) == 0
    assert Hold.objects.get(pk=holds[0].pk).release_reason == "route failed"
    account = Account.objects.get(tenant=tenant)
    assert (account.balance, account.held) == (965_000, 35_000)
    assert selectors.ledger_is_consistent(account=account)


def test_r_bil_2_same_capture_key_moves_no_money_twice(tenant):
    fund(tenant, 1_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(2), idempotency_key=key(), actor=DELIVERY)
    k = key()
    services.capture_holds(captures=captures_for(holds[:1]), idempotency_key=k)
    assert services.capture_holds(captures=captures_for(holds[1:]), idempotency_key=k) == 0
    assert Hold.objects.get(pk=holds[1].pk).state == HoldState.HELD


def test_r_bil_2_batch_hold_uses_constant_queries(tenant, django_assert_max_num_queries, django_assert_num_queries):
    """One account lock + bulk inserts: 1000 lines cost the same queries as 10 (not O(n))."""
    fund(tenant, 10_000_000_000)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        services.hold_messages(tenant=tenant, lines=lines(10, prefix="s"), idempotency_key=key(), actor=DELIVERY)
    with django_assert_num_queries(len(small.captured_queries)):
        holds = services.hold_messages(
            tenant=tenant, lines=lines(1000, prefix="b"), idempotency_key=key(), actor=DELIVERY
        )
    assert len(holds) == 1000
    assert len(statements(small)) <= 8
    locks = [q for q in small.captured_queries if "FOR UPDATE" in q["sql"]]
    assert len(locks) == 1


def statements(context) -> list[str]:
    """Queries other than django-tenants' per-cursor `SET search_path`."""
    return [q["sql"] for q in context.captured_queries if not q["sql"].startswith("SET search_path")]


def test_r_bil_2_batch_capture_and_release_use_constant_queries(tenant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fund(tenant, 10_000_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(1000), idempotency_key=key(), actor=DELIVERY)
    with CaptureQueriesContext(connection) as capture:
        assert services.capture_holds(captures=captures_for(holds[:500]), idempotency_key=key()) == 500
    with CaptureQueriesContext(connection) as release:
        assert services.release_holds(hold_ids=[h.pk for h in holds], idempotency_key=key()) == 500
    assert len(statements(capture)) <= 8
    assert len(statements(release)) <= 9


# --- packages (R-BIL-3) -------------------------------------------------------------------------


def product(segments=100, price=3_000_000, days=30, message_types=None):
    return PackageProduct.objects.create(
        name=f"{segments} segs", segments=segments, price=price, validity_days=days, message_types=message_types or []
    )


def test_r_bil_3_packages_are_used_before_cash_soonest_expiring_first(tenant):
    fund(tenant, 1_000_000)
    later = services.buy_package(
        tenant=tenant, product=product(segments=10, days=60), actor=FINANCE, idempotency_key=key()
    )
    sooner = services.buy_package(
        tenant=tenant, product=product(segments=3, days=10), actor=FINANCE, idempotency_key=key()
    )
    holds = services.hold_messages(tenant=tenant, lines=lines(5, segments=3), idempotency_key=key(), actor=DELIVERY)
    sooner.refresh_from_db()
    later.refresh_from_db()
    assert (sooner.segments_remaining, later.segments_remaining) == (0, 0)
    # 15 segments: 3 from the sooner package, 10 from the later one, 2 from cash
    assert sum(h.package_segments for h in holds) == 13
    assert sum(h.amount for h in holds) == 2 * 35_000
    assert selectors.balance_of(tenant=tenant) == 1_000_000 - 70_000


def test_r_bil_3_release_gives_back_the_same_package_segments(tenant):
    grant = services.buy_package(tenant=tenant, product=product(segments=10), actor=FINANCE, idempotency_key=key())
    fund(tenant, 1_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(4, segments=3), idempotency_key=key(), actor=DELIVERY)
    grant.refresh_from_db()
    assert grant.segments_remaining == 0
    services.release_holds(hold_ids=[h.pk for h in holds], idempotency_key=key())
    grant.refresh_from_db()
    assert grant.segments_remaining == 10
    assert selectors.balance_of(tenant=tenant) == 1_000_000
    assert selectors.ledger_is_consistent(account=Account.objects.get(tenant=tenant))


def test_r_bil_3_package_limited_to_message_types_only_serves_those(tenant):
    services.buy_package(
        tenant=tenant,
        product=product(segments=10, message_types=["verification"]),
        actor=FINANCE,
        idempotency_key=key(),
    )
    fund(tenant, 1_000_000)
    marketing = services.hold_messages(
        tenant=tenant, lines=lines(1, message_type="marketing", prefix="m"), idempotency_key=key(), actor=DELIVERY
    )
    verification = services.hold_messages(
        tenant=tenant, lines=lines(1, message_type="verification", prefix="v"), idempotency_key=key(), actor=DELIVERY
    )
    assert (marketing[0].package_segments, marketing[0].amount) == (0, 35_000)
    assert (verification[0].package_segments, verification[0].amount) == (1, 0)


def test_r_bil_3_expired_package_is_not_used(tenant):
    grant = services.buy_package(tenant=tenant, product=product(segments=10), actor=FINANCE, idempotency_key=key())
    PackageGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.InsufficientBalance):
        services.hold_messages(tenant=tenant, lines=lines(1), idempotency_key=key(), actor=DELIVERY)


def test_r_bil_3_paid_package_books_topup_and_purchase(tenant):
    grant = services.buy_package(tenant=tenant, product=product(price=3_000_000), actor=FINANCE, idempotency_key=key())
    kinds = list(LedgerEntry.objects.filter(account__tenant=tenant).order_by("id").values_list("kind", "amount"))
    assert kinds == [("topup", 3_000_000), ("package", -3_000_000)]
    assert grant.expires_at > timezone.now() + timedelta(days=29)
    assert selectors.balance_of(tenant=tenant) == 0


def test_r_bil_2_holds_work_from_inside_a_tenant_schema(tenant):
    """Delivery accepts messages inside the tenant's schema: billing's public tables still serve."""
    from django_tenants.utils import tenant_context

    fund(tenant, 1_000_000)
    with tenant_context(tenant):
        holds = services.hold_messages(tenant=tenant, lines=lines(2), idempotency_key=key(), actor=DELIVERY)
        assert services.capture_holds(captures=captures_for(holds[:1]), idempotency_key=key()) == 1
        assert services.release_holds(hold_ids=[holds[1].pk], idempotency_key=key()) == 1
        assert selectors.balance_of(tenant=tenant) == 965_000
