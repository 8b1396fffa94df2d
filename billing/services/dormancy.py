"""Dormancy (R-TEN-4, R-TEN-5, R-BIL-3): candidates found daily, notified, acted on after notice."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from tenants.duty_notices import notify_dormancy as notify_dormancy_in_inbox
from tenants.models import Tenant, TenantState
from tenants.services import Actor, change_tenant_state, record_operation

from ..errors import (
    InvalidState,
)
from ..models import (
    Account,
    DormancyCase,
    DormancyKind,
    DormancyState,
    Hold,
    PackageGrant,
    PackageState,
)
from .ledger import account_for, enqueue
from .packages import expire_packages

# --- dormancy (R-TEN-4, R-TEN-5, R-BIL-3) -----------------------------------------------------------------


def last_use_of(account: Account) -> datetime | None:
    """Last actual use = the latest hold (a send), or the account's creation when it never sent."""
    return Hold.objects.filter(account=account).aggregate(last=Max("created_at"))["last"]


def _service_expired(account: Account, now: datetime) -> bool:
    """R-TEN-5: the paid service has expired: the term ended, or every package bought has ended."""
    if account.service_expires_at is not None:
        return account.service_expires_at <= now
    grants = PackageGrant.objects.filter(account=account)
    return grants.exists() and not grants.filter(state=PackageState.ACTIVE, expires_at__gt=now).exists()


def scan_dormancy(*, now: datetime | None = None) -> list[DormancyCase]:
    """The daily job's first half: find candidates, open a case per (tenant, kind) and notify.

    Thresholds come from settings (BILLING_DORMANCY_*). Nothing is acted on here.
    """
    now = now or timezone.now()
    days = settings.BILLING_DORMANCY_DAYS
    notice = timedelta(days=settings.BILLING_DORMANCY_NOTICE_DAYS)
    opened = []
    open_cases = set(
        DormancyCase.objects.filter(state=DormancyState.NOTIFIED, package__isnull=True).values_list("tenant_id", "kind")
    )
    open_packages = set(
        DormancyCase.objects.filter(state=DormancyState.NOTIFIED, package__isnull=False).values_list(
            "package_id", flat=True
        )
    )
    # Pending tenants never started; terminated ones are over: neither is dormant.
    tenants = Tenant.objects.exclude(schema_name="public").filter(state__in=[TenantState.ACTIVE, TenantState.SUSPENDED])
    for tenant in tenants.iterator():
        account = Account.objects.filter(tenant=tenant).first()
        last_use = (last_use_of(account) if account else None) or (account.created_at if account else tenant.created_at)
        idle = now - last_use
        kinds = []
        if tenant.state == TenantState.ACTIVE:
            if account and _service_expired(account, now) and idle >= timedelta(days=days["idle_expired"]):
                kinds.append(DormancyKind.IDLE_EXPIRED)
            elif idle >= timedelta(days=days["idle"]):
                kinds.append(DormancyKind.IDLE)
        activity = tenant.last_activity_at or tenant.created_at
        if now - activity >= timedelta(days=days["no_login"]):
            kinds.append(DormancyKind.NO_LOGIN)
        found: list[tuple[str, PackageGrant | None]] = [(kind, None) for kind in kinds]
        if account is not None:
            # R-BIL-3: each package on its own clock: a case per idle package, so a package
            # bought (or used) after another one's notice is never expired with it.
            idle_after = now - timedelta(days=days["package_idle"])
            for grant in PackageGrant.objects.filter(
                account=account, state=PackageState.ACTIVE, segments_remaining__gt=0
            ).order_by("id"):
                if (grant.last_used_at or grant.starts_at) <= idle_after and grant.pk not in open_packages:
                    found.append((DormancyKind.PACKAGE_IDLE, grant))
        for kind, grant in found:
            if grant is None and (tenant.pk, kind) in open_cases:
                continue
            with transaction.atomic():
                case = DormancyCase.objects.create(
                    tenant=tenant,
                    kind=kind,
                    package=grant,
                    last_use_at=(grant.last_used_at or grant.starts_at) if grant else last_use,
                    found_at=now,
                    notified_at=now,
                    act_after=now + notice,
                )
                record_operation(
                    actor=Actor.system("billing.dormancy"),
                    action="billing.dormancy_notice",
                    tenant=tenant,
                    obj=case,
                    reason=DormancyKind(kind).label,
                    after={
                        "kind": kind,
                        "act_after": case.act_after.isoformat(),
                        "package": grant.pk if grant else None,
                    },
                )
                case_id = case.pk
                transaction.on_commit(lambda case_id=case_id: _enqueue_dormancy_notice(case_id), robust=True)
            opened.append(case)
    return opened


def _enqueue_dormancy_notice(case_id: int) -> None:
    enqueue("send_dormancy_notice_job", case_id)


def notify_dormancy(*, case_id: int) -> None:
    case = DormancyCase.objects.select_related("tenant").get(pk=case_id)
    tenant = case.tenant
    notify_dormancy_in_inbox(case=case)  # R-TEN-4 in the inbox and webhook (R-DLV-7); the e-mail stays below
    if tenant.contact_email:
        send_mail(
            f"Notice: {DormancyKind(case.kind).label}",
            f"{tenant.name}: {DormancyKind(case.kind).label} (last use {case.last_use_at:%Y-%m-%d}). "
            f"Unless the account is used again, action is taken after {timezone.localtime(case.act_after):%Y-%m-%d}.",
            None,
            [tenant.contact_email],
        )


def _idle_packages(case: DormancyCase, account: Account) -> list[PackageGrant]:
    """The packages an idle-package case may expire: its own package (older cases without one:
    the packages that existed when it was found), still active and not used since."""
    grants = PackageGrant.objects.filter(account=account, state=PackageState.ACTIVE, segments_remaining__gt=0)
    grants = grants.filter(pk=case.package_id) if case.package_id else grants.filter(starts_at__lte=case.found_at)
    return [g for g in grants if g.last_used_at is None or g.last_used_at <= case.found_at]


def _still_dormant(case: DormancyCase, now: datetime) -> bool:
    tenant = case.tenant
    account = Account.objects.filter(tenant=tenant).first()
    if case.kind in (DormancyKind.IDLE, DormancyKind.IDLE_EXPIRED):
        last = last_use_of(account) if account else None
        return last is None or last <= case.found_at
    if case.kind == DormancyKind.NO_LOGIN:
        return tenant.last_activity_at is None or tenant.last_activity_at <= case.found_at
    if case.kind == DormancyKind.PACKAGE_IDLE:
        if account is None:
            return False
        return bool(_idle_packages(case, account))
    return False


def act_on_dormancy(*, now: datetime | None = None) -> list[DormancyCase]:
    """The daily job's second half: after the notice period, act on cases still dormant (suspend
    the tenant, or expire idle package credits); cases used again meanwhile are resolved."""
    now = now or timezone.now()
    actor = Actor.system("billing.dormancy")
    actions = settings.BILLING_DORMANCY_ACTIONS
    done = []
    for case in DormancyCase.objects.filter(state=DormancyState.NOTIFIED, act_after__lte=now).select_related("tenant"):
        with transaction.atomic():
            case = DormancyCase.objects.select_for_update().select_related("tenant").get(pk=case.pk)
            if case.state != DormancyState.NOTIFIED:
                continue
            tenant = case.tenant
            if not _still_dormant(case, now):
                case.state, case.outcome = DormancyState.RESOLVED, "used again during the notice period"
            elif case.kind == DormancyKind.PACKAGE_IDLE:
                account = account_for(tenant)
                segments = expire_packages(
                    account=account,
                    actor=actor,
                    reason=DormancyKind(case.kind).label,
                    grants=_idle_packages(case, account),
                )
                case.state, case.outcome = DormancyState.ACTED, f"expired {segments} idle package segments"
            else:
                action = actions.get(case.kind, "suspend")
                target = {"suspend": TenantState.SUSPENDED, "terminate": TenantState.TERMINATED}[action]
                if tenant.state in (TenantState.ACTIVE, TenantState.SUSPENDED) and tenant.state != target:
                    change_tenant_state(
                        tenant=tenant,
                        to_state=target,
                        actor=actor,
                        reason=f"dormancy: {DormancyKind(case.kind).label} (R-TEN-4)",
                    )
                case.state, case.outcome = DormancyState.ACTED, f"tenant {target}"
            case.acted_at = now
            case.save(update_fields=["state", "outcome", "acted_at"])
            record_operation(
                actor=actor,
                action=f"billing.dormancy_{case.state}",
                tenant=tenant,
                obj=case,
                reason=case.outcome,
                after={"kind": case.kind},
            )
        done.append(case)
    return done


def cancel_dormancy_case(*, case: DormancyCase, actor: Actor, reason: str) -> DormancyCase:
    with transaction.atomic():
        case = DormancyCase.objects.select_for_update().select_related("tenant").get(pk=case.pk)
        if case.state != DormancyState.NOTIFIED:
            raise InvalidState("Only open cases can be cancelled.")
        case.state, case.outcome, case.acted_at = DormancyState.CANCELLED, reason, timezone.now()
        case.save(update_fields=["state", "outcome", "acted_at"])
        record_operation(actor=actor, action="billing.dormancy_cancelled", tenant=case.tenant, obj=case, reason=reason)
    return case
