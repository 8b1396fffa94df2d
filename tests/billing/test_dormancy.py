"""R-TEN-4 / R-TEN-5 / R-BIL-3: dormancy candidates are listed, notified, and acted on only after
the notice period; every step is recorded."""

from datetime import timedelta

from django.utils import timezone

from billing import actors, schedule, services
from billing.models import DormancyCase, DormancyKind, DormancyState, Hold, PackageGrant, PackageProduct, PackageState
from tenants.models import OperationRecord, Tenant, TenantState

from .conftest import DELIVERY, FINANCE, fund, key, lines

DAY = timedelta(days=1)


def send_once(tenant, *, days_ago=0):
    holds = services.hold_messages(tenant=tenant, lines=lines(1), idempotency_key=key(), actor=DELIVERY)
    if days_ago:  # simulate a send that happened back then
        Hold.objects.filter(pk__in=[h.pk for h in holds]).update(created_at=timezone.now() - days_ago * DAY)


def cases(tenant, kind):
    return DormancyCase.objects.filter(tenant=tenant, kind=kind)


def test_r_ten_4_90_days_without_use_opens_a_case_and_notifies(tenant, django_capture_on_commit_callbacks):
    fund(tenant, 1_000_000)
    send_once(tenant)
    now = timezone.now()
    services.scan_dormancy(now=now + 89 * DAY)
    assert not cases(tenant, DormancyKind.IDLE).exists()
    with django_capture_on_commit_callbacks() as callbacks:
        services.scan_dormancy(now=now + 91 * DAY)
    case = cases(tenant, DormancyKind.IDLE).get()
    assert case.state == DormancyState.NOTIFIED
    assert case.notified_at == now + 91 * DAY
    assert case.act_after == now + (91 + 30) * DAY
    assert len(callbacks) >= 1
    assert OperationRecord.objects.filter(
        tenant=tenant, action="billing.dormancy_notice", object_id=str(case.pk)
    ).exists()
    services.scan_dormancy(now=now + 92 * DAY)
    assert cases(tenant, DormancyKind.IDLE).count() == 1  # one open case, not one a day


def test_r_ten_4_acts_only_after_the_notice_period(tenant):
    fund(tenant, 1_000_000)
    send_once(tenant)
    now = timezone.now()
    services.scan_dormancy(now=now + 91 * DAY)
    services.act_on_dormancy(now=now + 120 * DAY)
    assert Tenant.objects.get(pk=tenant.pk).state == TenantState.ACTIVE
    services.act_on_dormancy(now=now + 122 * DAY)
    assert Tenant.objects.get(pk=tenant.pk).state == TenantState.SUSPENDED
    case = cases(tenant, DormancyKind.IDLE).get()
    assert case.state == DormancyState.ACTED
    assert case.acted_at == now + 122 * DAY
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.dormancy_acted").exists()
    assert OperationRecord.objects.filter(tenant=tenant, action="tenant.suspended").exists()


def test_r_ten_4_use_during_the_notice_period_resolves_the_case(tenant):
    fund(tenant, 1_000_000)
    send_once(tenant, days_ago=100)
    services.scan_dormancy()
    send_once(tenant)  # used again
    services.act_on_dormancy(now=timezone.now() + 31 * DAY)
    assert cases(tenant, DormancyKind.IDLE).get().state == DormancyState.RESOLVED
    assert Tenant.objects.get(pk=tenant.pk).state == TenantState.ACTIVE


def test_r_ten_4_180_days_after_paid_service_expired(tenant):
    fund(tenant, 1_000_000)
    send_once(tenant)
    account = services.account_for(tenant)
    account.service_expires_at = timezone.now() - DAY
    account.save(update_fields=["service_expires_at"])
    now = timezone.now()
    services.scan_dormancy(now=now + 181 * DAY)
    assert cases(tenant, DormancyKind.IDLE_EXPIRED).exists()
    assert not cases(tenant, DormancyKind.IDLE).exists()


def test_r_ten_4_12_months_without_login_or_api_call(tenant):
    Tenant.objects.filter(pk=tenant.pk).update(last_activity_at=timezone.now() - 366 * DAY)
    services.scan_dormancy()
    assert cases(tenant, DormancyKind.NO_LOGIN).exists()


def test_r_bil_3_idle_package_credits_expire_after_notice_and_are_not_refunded(tenant):
    product = PackageProduct.objects.create(name="p", segments=100, price=3_000_000, validity_days=730)
    grant = services.buy_package(tenant=tenant, product=product, actor=FINANCE, idempotency_key=key())
    PackageGrant.objects.filter(pk=grant.pk).update(starts_at=timezone.now() - 200 * DAY)
    services.scan_dormancy()
    case = cases(tenant, DormancyKind.PACKAGE_IDLE).get()
    services.act_on_dormancy(now=case.act_after + DAY)
    grant.refresh_from_db()
    assert grant.state == PackageState.EXPIRED
    assert grant.segments_remaining == 0
    assert services.account_for(tenant).balance == 0
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.expire_packages").exists()


def test_r_ten_4_operator_can_cancel_a_case(tenant):
    Tenant.objects.filter(pk=tenant.pk).update(last_activity_at=timezone.now() - 366 * DAY)
    services.scan_dormancy()
    case = cases(tenant, DormancyKind.NO_LOGIN).get()
    services.cancel_dormancy_case(case=case, actor=FINANCE, reason="customer phoned")
    services.act_on_dormancy(now=case.act_after + DAY)
    assert Tenant.objects.get(pk=tenant.pk).state == TenantState.ACTIVE


def test_r_ten_4_daily_job_runs_at_3_under_an_advisory_lock(tenant):
    assert (actors.daily_dormancy_job, "0 3 * * *") in [(job.actor, job.cron) for job in schedule.SCHEDULE]
    Tenant.objects.filter(pk=tenant.pk).update(last_activity_at=timezone.now() - 366 * DAY)
    actors.daily_dormancy_job.fn()
    assert cases(tenant, DormancyKind.NO_LOGIN).exists()
