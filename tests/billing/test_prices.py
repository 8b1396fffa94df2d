"""R-BIL-4: prices per message type and destination per plan, changes announced ≥ 7 days ahead,
the price in force at acceptance applies, history kept."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import selectors, services
from billing.models import Plan, Price

from .conftest import FINANCE


@pytest.fixture
def plan(db):
    return Plan.objects.get(is_default=True)


def announce(plan, unit_price, *, after=None, country="CN", message_type="verification", carrier=""):
    return services.announce_price(
        plan=plan,
        message_type=message_type,
        country=country,
        carrier=carrier,
        unit_price=unit_price,
        effective_from=after and timezone.now() + after,
        actor=FINANCE,
    )


def test_r_bil_4_first_price_of_a_destination_applies_at_once(tenant, plan):
    price = announce(plan, 35_000)
    found = selectors.price_for(tenant=tenant, message_type="verification", country="cn")
    assert (found.id, found.unit_price) == (price.id, 35_000)


def test_r_bil_4_change_sooner_than_7_days_is_refused(tenant, plan):
    announce(plan, 35_000)
    with pytest.raises(services.PriceNoticeTooShort):
        announce(plan, 40_000, after=timedelta(days=6, hours=23))


def test_r_bil_4_price_in_force_at_acceptance_applies_and_history_is_kept(tenant, plan):
    old = announce(plan, 35_000)
    new = announce(plan, 40_000, after=timedelta(days=7, minutes=1))
    now = timezone.now()
    assert selectors.price_for(tenant=tenant, message_type="verification", country="CN", at=now).id == old.id
    assert (
        selectors.price_for(tenant=tenant, message_type="verification", country="CN", at=now + timedelta(days=8)).id
        == new.id
    )
    assert Price.objects.filter(plan=plan, message_type="verification", country="CN").count() == 2


def test_r_bil_4_carrier_specific_price_wins(tenant, plan):
    announce(plan, 35_000)
    mobile = announce(plan, 33_000, carrier="china_mobile", after=timedelta(days=7, minutes=1))
    later = timezone.now() + timedelta(days=8)
    assert (
        selectors.price_for(
            tenant=tenant, message_type="verification", country="CN", carrier="china_mobile", at=later
        ).id
        == mobile.id
    )
    assert (
        selectors.price_for(tenant=tenant, message_type="verification", country="CN", carrier="china_unicom").unit_price
        == 35_000
    )


def test_r_bil_4_no_price_raises_no_price_422(tenant, plan):
    with pytest.raises(services.NoPrice) as excinfo:
        selectors.price_for(tenant=tenant, message_type="international", country="US")
    assert excinfo.value.code == "no_price"
    assert excinfo.value.http_status == 422


def test_r_bil_4_tenant_plan_overrides_the_default(tenant, plan):
    announce(plan, 35_000)
    vip = Plan.objects.create(code="vip", name="VIP")
    announce(vip, 30_000)
    services.assign_plan(tenant=tenant, plan=vip, actor=FINANCE)
    assert selectors.price_for(tenant=tenant, message_type="verification", country="CN").unit_price == 30_000


def test_r_bil_4_database_refuses_a_backdated_price(plan):
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.create(
            plan=plan,
            message_type="verification",
            country="CN",
            unit_price=1,
            announced_at=now,
            effective_from=now - timedelta(days=1),
        )
