"""R-TEN-5 the service term: one year (000), set on activation and on each renewal; the tenant is
told before it ends; service ends (sending suspended, with the reason) when the term expired
unrenewed or when the messages it bought are used up.

"Used up" (our reading of "the bought message count is used up"): the tenant bought at least one
package, none has credit left (every grant expired, forfeited or at 0 segments) and the cash
balance is 0 with nothing held. A tenant that never bought a package runs on cash alone and is
never "used up" (R-BIL-1 already refuses its sends without balance).

The first term is set by tenants.services.start_term inside the activating state change (tenants'
core, so the state gate imports no duty module). The term lives in
billing.Account.service_expires_at (read by billing's dormancy scan too); the notice clock in
Tenant.service_end_noticed_at. Settings (read when called):
TENANT_TERM_NOTICE_DAYS (30, 7): reminders before the term ends; TENANT_TERM_GRACE_DAYS (7): the
least time between the first notice and the end of service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Account, PackageGrant, PackageState
from smsplatform.dates import add_calendar_months

from .models import NoticeKind, Tenant, TenantKind, TenantState
from .notices import notify
from .services import (
    TERM_MONTHS,
    Actor,
    TenantError,
    change_tenant_state,
    lock_term_account,
    record_operation,
    start_term,
)

# Prefix of the suspension reasons this module writes: only those it lifts by itself.
REASON_MARK = "R-TEN-5:"


class TermError(TenantError):
    code = "term_error"


def _notice_days() -> list[int]:
    return sorted({int(d) for d in getattr(settings, "TENANT_TERM_NOTICE_DAYS", (30, 7))}, reverse=True)


def _grace() -> timedelta:
    return timedelta(days=int(getattr(settings, "TENANT_TERM_GRACE_DAYS", 7)))


# --- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TermStatus:
    expires_at: datetime | None
    expired: bool
    used_up: bool

    @property
    def ended(self) -> bool:
        return self.expired or self.used_up


def messages_used_up(*, account: Account, now: datetime) -> bool:
    """Bought packages all spent or ended, and no cash (see the module docstring)."""
    if account.balance > 0 or account.held > 0:
        return False
    grants = PackageGrant.objects.filter(account=account)
    if not grants.exists():
        return False
    usable = Q(state=PackageState.ACTIVE, expires_at__gt=now, segments_remaining__gt=0)
    return not grants.filter(usable).exists()


def term_status(*, tenant: Tenant, now: datetime | None = None) -> TermStatus:
    now = now or timezone.now()
    account = Account.objects.filter(tenant=tenant).first()
    if account is None:
        return TermStatus(expires_at=None, expired=False, used_up=False)
    expires_at = account.service_expires_at
    return TermStatus(
        expires_at=expires_at,
        expired=expires_at is not None and expires_at <= now,
        used_up=messages_used_up(account=account, now=now),
    )


# --- writes ------------------------------------------------------------------------------------


def renew_term(*, tenant: Tenant, actor: Actor, reason: str = "", now: datetime | None = None) -> Tenant:
    """Add one year: from the current expiry if it has not passed, else from now. A tenant whose
    service this module ended for the expired term sends again (unless its messages are used up)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if locked.kind == TenantKind.PLATFORM:
            raise TermError("The platform itself has no service term.", code="no_term")
        if locked.state in (TenantState.PENDING, TenantState.TERMINATED):
            raise TermError(
                f"A {locked.state} tenant has no term to renew.",
                code="term_not_renewable",
                details={"state": locked.state},
            )
        account = lock_term_account(locked)
        before = account.service_expires_at
        base = before if before is not None and before > now else now
        account.service_expires_at = add_calendar_months(base, TERM_MONTHS)
        account.save(update_fields=["service_expires_at"])
        _set_clock(locked, "", None)
        record_operation(
            actor=actor,
            action="tenant.renew_term",
            tenant=locked,
            obj=locked,
            reason=reason or "service term renewed",
            before={"service_expires_at": before.isoformat() if before else None},
            after={"service_expires_at": account.service_expires_at.isoformat()},
        )
        _resume_if_due(tenant=locked, actor=actor, now=now)
    tenant.refresh_from_db()
    return tenant


def _resume_if_due(*, tenant: Tenant, actor: Actor, now: datetime) -> bool:
    """Lift a suspension this module made once its cause is gone (renewed, funds back)."""
    if tenant.state != TenantState.SUSPENDED or not tenant.state_reason.startswith(REASON_MARK):
        return False
    if term_status(tenant=tenant, now=now).ended:
        return False
    _set_clock(tenant, "", None)
    change_tenant_state(
        tenant=tenant, to_state=TenantState.ACTIVE, actor=actor, reason=f"{REASON_MARK} service renewed or funded"
    )
    return True


# Notice texts per cause: (subject zh, subject en, body zh, body en), formatted with the dates.
_TEXTS = {
    "expiring": (
        "服务期将于 {expires} 到期",
        "Your service term ends on {expires}",
        "您的一年服务期将于 {expires} 到期。请在到期前续费，否则到期后将暂停发送。",
        "Your one-year service term ends on {expires}. Renew before then, or sending is suspended when it ends.",
    ),
    "expired": (
        "服务期已到期",
        "Your service term has ended",
        "您的服务期已于 {expires} 到期且未续费，将于 {ends} 暂停发送。",
        "Your service term ended on {expires} and was not renewed; sending is suspended on {ends}.",
    ),
    "used_up": (
        "所购短信已用完",
        "The messages you bought are used up",
        "您购买的短信套餐已用完且余额为零，如不充值或续购，将于 {ends} 暂停发送。",
        "Your packages are used up and your balance is zero; top up or buy a package, or sending is "
        "suspended on {ends}.",
    ),
    "ended": (
        "已暂停发送",
        "Sending suspended",
        "已暂停发送：{reason}",
        "Sending is suspended: {reason}",
    ),
}


def _tell(*, tenant: Tenant, what: str, status: TermStatus, now: datetime, key: str, ends_at=None, reason="") -> None:
    expires = status.expires_at.date().isoformat() if status.expires_at else ""
    ends = ends_at.date().isoformat() if ends_at else ""
    texts = [t.format(expires=expires, ends=ends, reason=reason) for t in _TEXTS[what]]
    notify(
        tenant=tenant,
        kind=NoticeKind.SERVICE_TERM,
        subject_zh=texts[0],
        subject_en=texts[1],
        body_zh=texts[2],
        body_en=texts[3],
        data={
            "reason": what,
            "service_expires_at": status.expires_at.isoformat() if status.expires_at else None,
            "ends_at": ends_at.isoformat() if ends_at else None,
        },
        effective_at=ends_at or (status.expires_at if what == "expiring" else None),
        dedupe_key=key,
        now=now,
    )


def _end_reason(status: TermStatus) -> str:
    if status.expired:
        return (
            f"{REASON_MARK} the service term ended on {status.expires_at:%Y-%m-%d} and was not renewed; "
            "renew the service to send again."
        )
    return f"{REASON_MARK} the messages bought are used up (no package credit, no balance); top up or buy a package."


def _set_clock(tenant: Tenant, cause: str, at: datetime | None) -> None:
    tenant.service_end_cause, tenant.service_end_noticed_at = cause, at
    tenant.save(update_fields=["service_end_cause", "service_end_noticed_at"])


def review_term(*, tenant: Tenant, now: datetime | None = None) -> str:
    """One tenant through the term rules; returns what happened (for the job's summary).

    Notice first, end after: service ends only TENANT_TERM_GRACE_DAYS after the tenant was told
    of that cause (a reminder of the coming expiry counts for the expiry; used-up messages are
    announced on their own)."""
    now = now or timezone.now()
    actor = Actor.system("tenants.term")
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if tenant.state == TenantState.SUSPENDED:
            return "resumed" if _resume_if_due(tenant=tenant, actor=actor, now=now) else "unchanged"
        if tenant.state != TenantState.ACTIVE or tenant.kind == TenantKind.PLATFORM:
            return "unchanged"
        status = term_status(tenant=tenant, now=now)
        if status.expires_at is None:
            # Active before terms were kept: the year starts now (recorded).
            expires_at = start_term(tenant=tenant, now=now)
            record_operation(
                actor=actor,
                action="tenant.term_start",
                tenant=tenant,
                obj=tenant,
                reason="service term set for a tenant active before terms were kept",
                after={"service_expires_at": expires_at.isoformat()},
            )
            return "started"
        if not status.ended:
            days_left = (status.expires_at - now).days
            due = [d for d in _notice_days() if days_left < d]
            if not due:
                if tenant.service_end_noticed_at is not None:  # funds came back before the end
                    _set_clock(tenant, "", None)
                return "unchanged"
            # The nearest reminder only: a job that missed the 30-day one sends the 7-day one.
            when = status.expires_at.date().isoformat()
            _tell(tenant=tenant, what="expiring", status=status, now=now, key=f"term:expiring:{when}:{min(due)}")
            if tenant.service_end_cause != "expiring":
                _set_clock(tenant, "expiring", now)
            return "noticed"
        cause = "expired" if status.expired else "used_up"
        valid = ("expiring", "expired") if cause == "expired" else ("used_up",)
        if tenant.service_end_noticed_at is None or tenant.service_end_cause not in valid:
            ends_at = now + _grace()
            key = f"term:{cause}:{status.expires_at.date() if cause == 'expired' else now.date()}"
            _tell(tenant=tenant, what=cause, status=status, now=now, key=key, ends_at=ends_at)
            _set_clock(tenant, cause, now)
            return "noticed"
        if now < tenant.service_end_noticed_at + _grace():
            return "unchanged"
        reason = _end_reason(status)
        change_tenant_state(tenant=tenant, to_state=TenantState.SUSPENDED, actor=actor, reason=reason)
        _tell(
            tenant=tenant, what="ended", status=status, now=now, key=f"term:ended:{cause}:{now.date()}", reason=reason
        )
        return "ended"


def review_terms(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic job: every active or term-suspended tenant through review_term."""
    summary: dict[str, int] = {}
    tenants = Tenant.objects.exclude(kind=TenantKind.PLATFORM).filter(
        Q(state=TenantState.ACTIVE) | Q(state=TenantState.SUSPENDED, state_reason__startswith=REASON_MARK)
    )
    for tenant in tenants.iterator():
        outcome = review_term(tenant=tenant, now=now)
        summary[outcome] = summary.get(outcome, 0) + 1
    return summary
