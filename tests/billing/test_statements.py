"""R-BIL-7 statements from the ledger; R-BIL-8 billed summary; exact money conversions."""

from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from billing import selectors, services
from billing.money import InvalidAmount, Money, cny_to_micro, format_money, micro_to_cny

from .conftest import DELIVERY, FINANCE, fund, key, lines


def months():
    now = timezone.localtime()
    this = (now.year, now.month)
    following = (now.year + (now.month == 12), now.month % 12 + 1)
    return this, following


def test_r_bil_7_next_month_opens_with_this_months_closing(tenant):
    fund(tenant, 5_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(3), idempotency_key=key(), actor=DELIVERY)
    services.capture_holds(
        captures=[services.Capture(hold_id=holds[0].pk, carrier_message_id="a", submitted_at=timezone.now())],
        idempotency_key=key(),
    )
    services.request_refund(tenant=tenant, cause="platform_ended", actor=FINANCE, reason="", idempotency_key=key())
    (y1, m1), (y2, m2) = months()
    this = selectors.statement_for(tenant=tenant, year=y1, month=m1)
    following = selectors.statement_for(tenant=tenant, year=y2, month=m2)
    assert this["refunds"] == 5_000_000 - 3 * 35_000
    assert this["closing"] == this["opening"] + this["top_ups"] - this["charges"] - this["refunds"] == 70_000
    assert following["opening"] == this["closing"]
    assert following["top_ups"] == following["charges"] == 0


def test_r_bil_8_billed_summary_counts_captured_messages_only(tenant):
    fund(tenant, 5_000_000)
    holds = services.hold_messages(tenant=tenant, lines=lines(3, segments=2), idempotency_key=key(), actor=DELIVERY)
    services.capture_holds(
        captures=[
            services.Capture(hold_id=h.pk, carrier_message_id="a", submitted_at=timezone.now()) for h in holds[:2]
        ],
        idempotency_key=key(),
    )
    services.release_holds(hold_ids=[holds[2].pk], idempotency_key=key())
    (y, m), _ = months()
    start, end = selectors.month_bounds(y, m)
    summary = selectors.billed_summary(tenant=tenant, start=start, end=end)
    assert summary["captured_messages"] == 2
    assert summary["captured_segments"] == 4
    assert summary["amount"] == 140_000


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_r_bil_9_cny_round_trips_exactly(micro):
    assert cny_to_micro(micro_to_cny(micro)) == micro
    assert cny_to_micro(format_money(micro).split()[1]) == micro


def test_r_bil_9_money_refuses_floats_and_excess_decimals():
    assert cny_to_micro("0.035") == 35_000
    assert cny_to_micro(Decimal("1000.123456")) == 1_000_123_456
    for bad in (0.1, "0.0000001", "abc", "NaN"):
        with pytest.raises(InvalidAmount):
            cny_to_micro(bad)
    assert str(Money(35_000)) == "CNY 0.035000"
