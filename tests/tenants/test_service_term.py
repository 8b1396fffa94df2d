"""R-TEN-5: the one-year service term is set on activation and renewal; the tenant is told
before it ends; service ends (sending suspended with the reason) when the term expired
unrenewed or the bought messages are used up, and resumes once renewed or funded."""

import itertools
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from billing import services as billing
from billing.models import Account, PackageProduct
from smsplatform.dates import add_calendar_months
from tenants import term
from tenants.models import Notice, NoticeKind, OperationRecord, Tenant, TenantState
from tenants.services import Actor, start_term, suspend_tenant
from tenants.term import TermError, renew_term, review_term, review_terms

from ..conftest import SYSTEM

DAY = timedelta(days=1)
FINANCE = Actor(kind="user", id="0", label="user:finance-tests")
_seq = itertools.count(1)


def key() -> str:
    return f"term-{uuid.uuid4().hex}-{next(_seq)}"


def expiry(tenant) -> object:
    return Account.objects.get(tenant=tenant).service_expires_at


def term_notices(tenant):
    return Notice.objects.filter(tenant=tenant, kind=NoticeKind.SERVICE_TERM)


def state(tenant) -> str:
    return Tenant.objects.get(pk=tenant.pk).state


@pytest.fixture
def tenant(make_tenant):
    return make_tenant(f"Term Co. {uuid.uuid4().hex[:6]}")


def use_up_package(tenant):
    """Buy a 2-message package and spend it through the billing services (hold + capture)."""
    product = PackageProduct.objects.create(name=f"p-{key()}", segments=2, price=0, validity_days=365)
    billing.buy_package(tenant=tenant, product=product, actor=FINANCE, idempotency_key=key())
    lines = [billing.HoldLine(reference=f"m:{i}", segments=1, unit_price=35_000) for i in range(2)]
    holds = billing.hold_messages(tenant=tenant, lines=lines, idempotency_key=key(), actor=SYSTEM)
    now = holds[0].created_at
    billing.capture_holds(
        captures=[billing.Capture(hold_id=h.pk, carrier_message_id=f"c{h.pk}", submitted_at=now) for h in holds],
        idempotency_key=key(),
    )


# --- the term is set -------------------------------------------------------------------------


def test_activation_sets_a_one_year_term_and_records_it_R_TEN_5(tenant):
    activated = Tenant.objects.get(pk=tenant.pk).state_changed_at
    assert expiry(tenant) == add_calendar_months(activated, 12)
    record = OperationRecord.objects.get(tenant=tenant, action="tenant.active")
    assert record.after["service_expires_at"] == expiry(tenant).isoformat()


def test_a_pending_tenant_has_no_term_until_approved_R_TEN_5(make_tenant):
    from tenants.services import approve_tenant

    pending = make_tenant("Pending Term Co.", activate=False)
    assert not Account.objects.filter(tenant=pending, service_expires_at__isnull=False).exists()
    approve_tenant(tenant=pending, actor=SYSTEM)
    assert expiry(pending) is not None


def test_reactivation_does_not_restart_the_term_R_TEN_5(tenant):
    from tenants.services import reactivate_tenant

    first = expiry(tenant)
    suspend_tenant(tenant=tenant, actor=SYSTEM, reason="test")
    reactivate_tenant(tenant=tenant, actor=SYSTEM, reason="test")
    assert expiry(tenant) == first


def test_renewal_before_expiry_adds_a_year_to_the_current_term_and_is_recorded_R_TEN_5(tenant):
    first = expiry(tenant)
    renew_term(tenant=tenant, actor=FINANCE, reason="paid for 2nd year", now=first - 10 * DAY)
    assert expiry(tenant) == add_calendar_months(first, 12)
    record = OperationRecord.objects.get(tenant=tenant, action="tenant.renew_term")
    assert record.actor_label == FINANCE.label
    assert record.before == {"service_expires_at": first.isoformat()}
    assert record.after == {"service_expires_at": expiry(tenant).isoformat()}


def test_renewal_after_expiry_runs_a_year_from_the_renewal_R_TEN_5(tenant):
    late = expiry(tenant) + 40 * DAY
    renew_term(tenant=tenant, actor=FINANCE, now=late)
    assert expiry(tenant) == add_calendar_months(late, 12)


def test_a_terminated_tenant_cannot_be_renewed_and_nothing_changes_R_TEN_5(tenant):
    from tenants.services import terminate_tenant

    terminate_tenant(tenant=tenant, actor=SYSTEM, reason="test")
    before = expiry(tenant)
    with pytest.raises(TermError) as caught:
        renew_term(tenant=tenant, actor=FINANCE)
    assert caught.value.code == "term_not_renewable"
    assert expiry(tenant) == before
    assert not OperationRecord.objects.filter(tenant=tenant, action="tenant.renew_term").exists()


# --- notice, then end of service -------------------------------------------------------------


def test_reminders_30_and_7_days_before_the_end_once_each_R_TEN_5(tenant):
    end = expiry(tenant)
    assert review_term(tenant=tenant, now=end - 31 * DAY) == "unchanged"
    assert not term_notices(tenant).exists()
    review_term(tenant=tenant, now=end - 29 * DAY)
    review_term(tenant=tenant, now=end - 28 * DAY)  # the hourly job again: no second notice
    assert term_notices(tenant).count() == 1
    review_term(tenant=tenant, now=end - 6 * DAY)
    assert term_notices(tenant).count() == 2
    assert sorted(n.data["reason"] for n in term_notices(tenant)) == ["expiring", "expiring"]
    assert state(tenant) == TenantState.ACTIVE


def test_an_unrenewed_term_ends_service_at_expiry_with_a_clear_reason_R_TEN_5(tenant, client_a):
    end = expiry(tenant)
    review_term(tenant=tenant, now=end - 29 * DAY)
    assert review_term(tenant=tenant, now=end - DAY) == "noticed"  # the 7-day reminder
    assert state(tenant) == TenantState.ACTIVE
    assert review_term(tenant=tenant, now=end + timedelta(minutes=1)) == "ended"
    ended = Tenant.objects.get(pk=tenant.pk)
    assert ended.state == TenantState.SUSPENDED
    assert "service term ended" in ended.state_reason
    record = OperationRecord.objects.get(tenant=tenant, action="tenant.suspended")
    assert record.actor_label == "tenants.term"
    assert term_notices(tenant).filter(data__reason="ended").exists()


def test_the_api_refuses_a_send_after_the_end_with_the_reason_R_TEN_5(tenant_a, client_a):
    end = expiry(tenant_a) or start_term(tenant=tenant_a)
    review_term(tenant=tenant_a, now=end - 10 * DAY)
    review_term(tenant=tenant_a, now=end + DAY)
    response = client_a.post("/api/v1/messages", {}, format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "tenant_suspended"
    assert "service term ended" in body["message"]


def test_an_expired_term_never_noticed_ends_only_after_the_grace_period_R_TEN_5(tenant):
    late = expiry(tenant) + 3 * DAY  # the job did not run before the end
    assert review_term(tenant=tenant, now=late) == "noticed"
    assert term_notices(tenant).get().data["reason"] == "expired"
    assert review_term(tenant=tenant, now=late + 6 * DAY) == "unchanged"
    assert state(tenant) == TenantState.ACTIVE
    assert review_term(tenant=tenant, now=late + 7 * DAY) == "ended"
    assert state(tenant) == TenantState.SUSPENDED


def test_renewal_resumes_a_tenant_whose_term_ended_R_TEN_5(tenant):
    end = expiry(tenant)
    review_term(tenant=tenant, now=end - 10 * DAY)
    review_term(tenant=tenant, now=end + DAY)
    assert state(tenant) == TenantState.SUSPENDED
    renew_term(tenant=tenant, actor=FINANCE, now=end + 2 * DAY)
    renewed = Tenant.objects.get(pk=tenant.pk)
    assert renewed.state == TenantState.ACTIVE
    assert renewed.service_end_noticed_at is None
    assert expiry(tenant) == add_calendar_months(end + 2 * DAY, 12)


def test_used_up_messages_are_noticed_then_end_service_R_TEN_5(tenant):
    use_up_package(tenant)
    now = Tenant.objects.get(pk=tenant.pk).state_changed_at + 30 * DAY
    assert review_term(tenant=tenant, now=now) == "noticed"
    assert term_notices(tenant).get().data["reason"] == "used_up"
    assert review_term(tenant=tenant, now=now + 6 * DAY) == "unchanged"
    assert review_term(tenant=tenant, now=now + 7 * DAY) == "ended"
    ended = Tenant.objects.get(pk=tenant.pk)
    assert ended.state == TenantState.SUSPENDED
    assert "used up" in ended.state_reason


def test_a_top_up_before_the_end_cancels_it_R_TEN_5(tenant):
    use_up_package(tenant)
    now = Tenant.objects.get(pk=tenant.pk).state_changed_at + 30 * DAY
    review_term(tenant=tenant, now=now)
    billing.topup(tenant=tenant, amount=1_000_000, actor=FINANCE, idempotency_key=key())
    assert review_term(tenant=tenant, now=now + 8 * DAY) == "unchanged"
    assert state(tenant) == TenantState.ACTIVE
    assert Tenant.objects.get(pk=tenant.pk).service_end_noticed_at is None


def test_the_job_resumes_a_used_up_tenant_once_funded_R_TEN_5(tenant):
    use_up_package(tenant)
    now = Tenant.objects.get(pk=tenant.pk).state_changed_at + 30 * DAY
    review_term(tenant=tenant, now=now)
    review_term(tenant=tenant, now=now + 8 * DAY)
    assert state(tenant) == TenantState.SUSPENDED
    assert review_term(tenant=tenant, now=now + 9 * DAY) == "unchanged"  # still nothing to send with
    billing.topup(tenant=tenant, amount=1_000_000, actor=FINANCE, idempotency_key=key())
    assert review_term(tenant=tenant, now=now + 9 * DAY) == "resumed"
    assert state(tenant) == TenantState.ACTIVE


def test_a_reminder_does_not_count_as_notice_of_used_up_messages_R_TEN_5(tenant):
    end = expiry(tenant)
    review_term(tenant=tenant, now=end - 20 * DAY)  # expiry reminder starts the clock
    use_up_package(tenant)
    assert review_term(tenant=tenant, now=end - 5 * DAY) == "noticed"  # used up: told on its own
    assert review_term(tenant=tenant, now=end - 4 * DAY) == "unchanged"
    assert state(tenant) == TenantState.ACTIVE


def test_cash_only_tenants_with_no_balance_are_not_used_up_R_TEN_5(tenant):
    """The definition: only a tenant that bought packages can use up its bought messages."""
    now = Tenant.objects.get(pk=tenant.pk).state_changed_at + 30 * DAY
    assert review_term(tenant=tenant, now=now) == "unchanged"
    assert not term.term_status(tenant=tenant, now=now).used_up


def test_an_operator_suspension_is_never_lifted_by_the_job_R_TEN_5(tenant):
    suspend_tenant(tenant=tenant, actor=SYSTEM, reason="complaint under investigation")
    assert review_term(tenant=tenant, now=expiry(tenant) - 100 * DAY) == "unchanged"
    assert state(tenant) == TenantState.SUSPENDED


def test_a_tenant_active_before_terms_gets_a_year_from_now_recorded_R_TEN_5(tenant):
    Account.objects.filter(tenant=tenant).update(service_expires_at=None)
    now = Tenant.objects.get(pk=tenant.pk).state_changed_at + 400 * DAY
    summary = review_terms(now=now)
    assert summary.get("started", 0) >= 1
    assert expiry(tenant) == add_calendar_months(now, 12)
    assert OperationRecord.objects.filter(tenant=tenant, action="tenant.term_start").exists()


def test_the_job_is_scheduled_R_TEN_5():
    from tenants.actors import review_service_terms_job
    from tenants.schedule import SCHEDULE

    assert any(job.actor is review_service_terms_job for job in SCHEDULE)


# --- the admin ----------------------------------------------------------------------------------


def staff(role: str) -> Client:
    user = User.objects.create_user(f"{role}-term", password="pw-term-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["operator", "finance"])
def test_operators_see_the_term_and_renew_it_in_the_tenant_admin_R_TEN_5(tenant, role):
    client = staff(role)
    first = expiry(tenant)
    page = client.get(f"/admin/tenants/tenant/{tenant.pk}/change/")
    assert page.status_code == 200
    assert b"Service term (R-TEN-5)" in page.content
    listing = client.get("/admin/tenants/tenant/", {"q": tenant.name})
    assert b"renew_term" in listing.content
    response = client.post(
        "/admin/tenants/tenant/", {"action": "renew_term", "_selected_action": [str(tenant.pk)], "index": "0"}
    )
    assert response.status_code == 302
    assert expiry(tenant) == add_calendar_months(first, 12)
    record = OperationRecord.objects.get(tenant=tenant, action="tenant.renew_term")
    assert record.actor_label == f"user:{role}-term"


@pytest.mark.parametrize("role", ["reviewer", "auditor"])
def test_other_roles_cannot_renew_a_term_R_TEN_5(tenant, role):
    client = staff(role)
    first = expiry(tenant)
    client.post("/admin/tenants/tenant/", {"action": "renew_term", "_selected_action": [str(tenant.pk)], "index": "0"})
    assert expiry(tenant) == first
    assert not OperationRecord.objects.filter(tenant=tenant, action="tenant.renew_term").exists()


def test_the_term_filter_lists_tenants_whose_term_ends_soon_R_TEN_5(tenant, make_tenant):
    from django.utils import timezone

    other = make_tenant(f"Term Far Co. {uuid.uuid4().hex[:6]}")
    Account.objects.filter(tenant=tenant).update(service_expires_at=timezone.now() + 10 * DAY)
    page = staff("operator").get("/admin/tenants/tenant/", {"term": "30d"})
    assert tenant.name.encode() in page.content
    assert other.name.encode() not in page.content


def test_a_destinations_first_price_starting_at_once_tells_no_one_R_BIL_4(tenant):
    """Activation opens the tenant's account (the term lives there), so the plan's tenants include
    it from day one: a first price (allowed to start at once) is no change and sends no notice."""
    from django.utils import timezone

    billing.announce_price(
        plan=billing.default_plan(),
        message_type="notification",
        country="ZW",
        unit_price=80_000,
        effective_from=timezone.now() + timedelta(seconds=1),
        actor=FINANCE,
    )
    assert not Notice.objects.filter(tenant=tenant, kind=NoticeKind.PRICE_CHANGE).exists()
