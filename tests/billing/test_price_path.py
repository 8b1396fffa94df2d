"""R-BIL-4, issue 12 item 3: one service path for every change of what a tenant pays, each with
the 7-day notice, a record, and a notice to the tenants affected; tenants read their prices."""

from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing import selectors, services
from billing.models import Plan
from tenants.models import OperationRecord

from .conftest import DELIVERY, FINANCE, fund, key, lines

WEEK = timedelta(days=7, minutes=1)


@pytest.fixture
def plan(db):
    return services.default_plan()


def announce(plan, unit_price, *, after=None, carrier="", message_type="verification"):
    return services.announce_price(
        plan=plan,
        message_type=message_type,
        country="CN",
        carrier=carrier,
        unit_price=unit_price,
        effective_from=after and timezone.now() + after,
        actor=FINANCE,
    )


def has_sent(tenant):
    fund(tenant, 1_000_000)
    services.hold_messages(tenant=tenant, lines=lines(1), idempotency_key=key(), actor=DELIVERY)


def test_r_bil_4_a_first_carrier_specific_price_is_a_change_and_needs_notice(tenant, plan):
    """The finding: 35,000 → 350,000 at once for one carrier's messages."""
    announce(plan, 35_000)
    with pytest.raises(services.PriceNoticeTooShort):
        announce(plan, 350_000, carrier="china_mobile")
    assert (
        selectors.price_for(tenant=tenant, message_type="verification", country="CN", carrier="china_mobile").unit_price
        == 35_000
    )
    announce(plan, 350_000, carrier="china_mobile", after=WEEK)


def test_r_bil_4_assign_plan_needs_notice_once_the_tenant_has_sent(tenant, plan):
    announce(plan, 35_000)
    vip = Plan.objects.create(code="dear", name="Dear")
    announce(vip, 90_000)
    has_sent(tenant)
    with pytest.raises(services.PriceNoticeTooShort):
        services.assign_plan(tenant=tenant, plan=vip, actor=FINANCE)
    assert selectors.price_for(tenant=tenant, message_type="verification", country="CN").unit_price == 35_000
    mail.outbox.clear()
    services.assign_plan(tenant=tenant, plan=vip, actor=FINANCE, effective_from=timezone.now() + WEEK)
    assert selectors.price_for(tenant=tenant, message_type="verification", country="CN").unit_price == 35_000
    later = timezone.now() + timedelta(days=8)
    assert selectors.price_for(tenant=tenant, message_type="verification", country="CN", at=later).unit_price == 90_000
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.price_change_notice").exists()


def test_r_bil_4_moving_the_default_plan_needs_notice_and_tells_tenants(
    tenant, plan, django_capture_on_commit_callbacks
):
    announce(plan, 35_000)
    other = Plan.objects.create(code="other", name="Other")
    announce(other, 70_000)
    has_sent(tenant)
    with pytest.raises(services.PriceNoticeTooShort):
        services.set_default_plan(plan=other, actor=FINANCE)
    assert Plan.objects.get(pk=plan.pk).is_default
    with django_capture_on_commit_callbacks(execute=True):
        services.set_default_plan(plan=other, actor=FINANCE, effective_from=timezone.now() + WEEK)
    assert selectors.price_for(tenant=tenant, message_type="verification", country="CN").unit_price == 35_000
    later = timezone.now() + timedelta(days=8)
    assert selectors.price_for(tenant=tenant, message_type="verification", country="CN", at=later).unit_price == 70_000
    assert _told_by_notice(tenant)  # inbox + e-mail + webhook (R-DLV-7), sent after commit
    assert OperationRecord.objects.filter(action="billing.set_default_plan").exists()


def test_r_bil_4_a_price_change_e_mails_the_tenants_on_the_plan(tenant, plan, django_capture_on_commit_callbacks):
    announce(plan, 35_000)
    with django_capture_on_commit_callbacks(execute=True):
        announce(plan, 40_000, after=WEEK)
    assert _told_by_notice(tenant, subject="Price change")
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.price_change_notice").exists()


def test_r_bil_4_tenant_reads_current_and_announced_prices(tenant, plan, client_a):
    current = announce(plan, 35_000)
    upcoming = announce(plan, 40_000, after=WEEK)
    body = client_a.get("/api/v1/billing/prices").json()
    assert body["plan"] == plan.code
    assert body["currency"] == "CNY"
    assert [(p["message_type"], p["unit_price"]) for p in body["current"]] == [("verification", 35_000)]
    [row] = [p for p in body["announced"] if p["unit_price"] == 40_000]
    # the same instant (the API writes it in the platform's zone, Asia/Shanghai: comparing UTC
    # dates failed from 16:00 to 24:00 UTC, when the two zones are on different days)
    assert datetime.fromisoformat(row["effective_from"]) == upcoming.effective_from
    assert current.pk != upcoming.pk


def test_r_bil_4_plan_edits_in_the_admin_are_recorded_and_cannot_move_the_default(client, tenant, plan):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("fin-plan", password="pw-fin-plan-1", is_staff=True)
    user.groups.add(Group.objects.get(name="finance"))
    client.force_login(user)
    other = Plan.objects.create(code="x1", name="X1")
    response = client.post(
        f"/admin/billing/plan/{other.pk}/change/", {"code": "x1", "name": "X one", "is_default": "on"}
    )
    assert response.status_code == 302
    other.refresh_from_db()
    assert (other.name, other.is_default) == ("X one", False)
    assert OperationRecord.objects.filter(action="billing.save_plan", actor_label="user:fin-plan").exists()


def _told_by_notice(tenant, *, subject: str = "") -> bool:
    """A price-change notice for the tenant, with an e-mail delivery to its contact (R-BIL-4, R-DLV-7)."""
    from tenants.models import Notice, NoticeDelivery

    notices = Notice.objects.filter(tenant=tenant, kind="price_change", subject_en__contains=subject)
    return NoticeDelivery.objects.filter(notice__in=notices, channel="email", address=tenant.contact_email).exists()
