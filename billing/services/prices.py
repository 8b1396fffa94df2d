"""Prices and plans (R-BIL-4): one path for every change of what a tenant pays."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tenants.models import NoticeKind, Tenant, TenantState
from tenants.notices import notify
from tenants.services import Actor, record_operation

from ..errors import (
    CurrencyMismatch,
    InvalidAmount,
    PriceNoticeTooShort,
)
from ..models import (
    Account,
    Currency,
    Hold,
    Plan,
    PlanAssignment,
    Price,
)
from ..money import MAX_AMOUNT, format_money
from ..selectors import default_plan_at, own_plan_at, plan_of
from .ledger import _locked_account

PRICE_NOTICE = timedelta(days=7)  # R-BIL-4


# --- prices and plans (R-BIL-4) ----------------------------------------------------------------
#
# One path for every change of what a tenant pays: a price (new, changed, carrier- or
# country-specific), a tenant's plan, the default plan. Each goes through a function here that
# enforces the 7-day notice, records the operation and announces the change to the tenants it
# affects (announce_price_change).


def default_plan() -> Plan:
    """The plan in force now for accounts without their own (created on first use)."""
    plan = default_plan_at(at=timezone.now())
    if plan is None:
        plan, _ = Plan.objects.get_or_create(code="standard", defaults={"name": "Standard", "is_default": True})
        now = timezone.now()  # one instant for both: effective_from may not precede announced_at
        PlanAssignment.objects.create(
            account=None, plan=plan, effective_from=now, announced_at=now, announced_by="system"
        )
    return plan


def _notice_error(*, now: datetime, effective_from: datetime) -> PriceNoticeTooShort:
    return PriceNoticeTooShort(
        details={"earliest": (now + PRICE_NOTICE).isoformat(), "effective_from": effective_from.isoformat()}
    )


def check_price_notice(
    *, plan: Plan, message_type: str, country: str, carrier: str, effective_from: datetime, now: datetime
) -> None:
    """R-BIL-4: a change takes effect no sooner than 7 days after it is announced.

    A price is a change when any price already covers the messages it will apply to: for a
    carrier-specific price that is the same carrier's price or the any-carrier price of the
    destination (its messages are charged that today). Only the very first price of a
    destination (nobody could send there before) may start at once.
    """
    if effective_from < now:
        raise PriceNoticeTooShort("A price cannot take effect in the past.")
    exists = Price.objects.filter(
        plan=plan, message_type=message_type, country=country.upper(), carrier__in={"", carrier}
    ).exists()
    if exists and effective_from < now + PRICE_NOTICE:
        raise _notice_error(now=now, effective_from=effective_from)


def _plan_tenants(plan: Plan, *, at: datetime) -> list[Tenant]:
    """Tenants that pay by `plan` at `at` (their own assignment, or the default)."""
    tenants = Tenant.objects.exclude(schema_name="public").exclude(state=TenantState.TERMINATED)
    return [t for t in tenants.iterator() if (p := plan_of(tenant=t, at=at)) is not None and p.pk == plan.pk]


def announce_price_change(
    *, tenants: list[Tenant], subject: str, text: str, actor: Actor, details: dict, effective_from: datetime
) -> int:
    """R-BIL-4 / R-DLV-7: tell each affected tenant that what it pays will change, and when: one
    notice each (inbox, e-mail and webhook, tenants.notices) and an operation record."""
    for tenant in tenants:
        record_operation(
            actor=actor, action="billing.price_change_notice", tenant=tenant, reason=subject, after=details
        )
        notify(
            tenant=tenant,
            kind=NoticeKind.PRICE_CHANGE,
            subject_zh="价格调整通知",
            subject_en=subject,
            body_zh=f"您的短信价格将调整（详情见英文说明及 GET /api/v1/billing/prices）：{text}",
            body_en=text,
            data={key: str(value) for key, value in details.items()},
            actor=actor,
            effective_at=effective_from,
        )
    return len(tenants)


def announce_price(
    *,
    plan: Plan,
    message_type: str,
    country: str,
    unit_price: int,
    actor: Actor,
    effective_from: datetime | None = None,
    carrier: str = "",
    currency: str = "CNY",
) -> Price:
    """Announce a price (a new row; history is kept). R-BIL-4. `effective_from` None = now
    (allowed only for the first price of a destination). Tenants paying by the plan are told."""
    if not isinstance(unit_price, int) or isinstance(unit_price, bool) or unit_price < 0 or unit_price > MAX_AMOUNT:
        raise InvalidAmount("A unit price is a whole, non-negative number of micro-units.")
    if currency not in Currency.values:
        raise CurrencyMismatch(f"Unknown currency {currency!r}.", details={"currency": currency})
    now = timezone.now()
    effective_from = effective_from or now
    country = country.upper()
    with transaction.atomic():
        Plan.objects.select_for_update().get(pk=plan.pk)  # serialise announcements per plan
        check_price_notice(
            plan=plan,
            message_type=message_type,
            country=country,
            carrier=carrier,
            effective_from=effective_from,
            now=now,
        )
        is_change = Price.objects.filter(
            plan=plan, message_type=message_type, country=country, carrier__in={"", carrier}
        ).exists()
        price = Price.objects.create(
            plan=plan,
            message_type=message_type,
            country=country,
            carrier=carrier,
            unit_price=unit_price,
            currency=currency,
            effective_from=effective_from,
            announced_at=now,
            announced_by=actor.label,
        )
        after = {
            "plan": plan.code,
            "message_type": message_type,
            "country": country,
            "carrier": carrier,
            "unit_price": unit_price,
            "currency": currency,
            "effective_from": effective_from.isoformat(),
        }
        record_operation(actor=actor, action="billing.announce_price", obj=price, after=after)
        if is_change:
            where = f"{country}/{carrier}" if carrier else country
            announce_price_change(
                tenants=_plan_tenants(plan, at=effective_from),
                subject=f"Price change from {effective_from:%Y-%m-%d}: {message_type} to {where}",
                text=(
                    f"From {effective_from:%Y-%m-%d %H:%M} UTC the price of a {message_type} message segment to "
                    f"{where} will be {format_money(unit_price, currency)} (plan {plan.name}). "
                    "Your current and announced prices: GET /api/v1/billing/prices."
                ),
                actor=actor,
                details=after,
                effective_from=effective_from,
            )
    return price


def _needs_notice(accounts_filter: dict) -> bool:
    """A plan change alters what someone pays once they have sent anything (R-BIL-4)."""
    return Hold.objects.filter(**accounts_filter).exists()


def assign_plan(*, tenant: Tenant, plan: Plan | None, actor: Actor, effective_from: datetime | None = None) -> Account:
    """The plan a tenant pays by (None: back to the default), from `effective_from` (default now).

    R-BIL-4: once the tenant has sent anything, a plan change is a price change: announced at
    least 7 days ahead (PriceNoticeTooShort) and the tenant is told. A tenant that never sent
    may be set up at once.
    """
    now = timezone.now()
    effective_from = effective_from or now
    with transaction.atomic():
        account = _locked_account(tenant)
        if effective_from < now:
            raise PriceNoticeTooShort("A plan change cannot take effect in the past.")
        current = plan_of(tenant=tenant, at=effective_from)
        target = plan
        if target is None:
            target = default_plan_at(at=effective_from)
        changes = (current.pk if current else None) != (target.pk if target else None)
        if changes and effective_from < now + PRICE_NOTICE and _needs_notice({"account": account}):
            raise _notice_error(now=now, effective_from=effective_from)
        before = {"plan": current.code if current else None}
        PlanAssignment.objects.create(
            account=account, plan=plan, effective_from=effective_from, announced_at=now, announced_by=actor.label
        )
        if effective_from <= now:
            Account.objects.filter(pk=account.pk).update(plan=plan)
            account.plan = plan
        after = {"plan": plan.code if plan else None, "effective_from": effective_from.isoformat()}
        record_operation(
            actor=actor, action="billing.assign_plan", tenant=tenant, obj=account, before=before, after=after
        )
        if changes and effective_from > now:
            announce_price_change(
                tenants=[tenant],
                subject=f"Price plan change from {effective_from:%Y-%m-%d}",
                text=(
                    f"From {effective_from:%Y-%m-%d %H:%M} UTC your messages are charged by the plan "
                    f"{target.name if target else 'default'}. See GET /api/v1/billing/prices."
                ),
                actor=actor,
                details=after,
                effective_from=effective_from,
            )
    return account


def set_default_plan(*, plan: Plan, actor: Actor, effective_from: datetime | None = None) -> PlanAssignment:
    """Make `plan` the default (the plan of every account without its own) from `effective_from`.

    R-BIL-4: when an account that pays by the default has sent anything, this changes what it
    pays: at least 7 days' notice, and those tenants are told. The `is_default` flag moves when
    the change is immediate (a scheduled one is read through the assignment rows).
    """
    now = timezone.now()
    effective_from = effective_from or now
    if effective_from < now:
        raise PriceNoticeTooShort("A plan change cannot take effect in the past.")
    with transaction.atomic():
        Plan.objects.select_for_update().filter(pk=plan.pk).get()
        current = default_plan_at(at=effective_from)
        changes = current is None or current.pk != plan.pk
        affected = (
            [t for t in _plan_tenants(current, at=effective_from) if not _own_plan(t, effective_from)]
            if changes and current is not None
            else []
        )
        if affected and effective_from < now + PRICE_NOTICE and Hold.objects.filter(tenant__in=affected).exists():
            raise _notice_error(now=now, effective_from=effective_from)
        assignment = PlanAssignment.objects.create(
            account=None, plan=plan, effective_from=effective_from, announced_at=now, announced_by=actor.label
        )
        if effective_from <= now:
            Plan.objects.filter(is_default=True).exclude(pk=plan.pk).update(is_default=False)
            Plan.objects.filter(pk=plan.pk).update(is_default=True)
        after = {
            "default_plan": plan.code,
            "before": current.code if current else None,
            "effective_from": effective_from.isoformat(),
        }
        record_operation(actor=actor, action="billing.set_default_plan", obj=plan, after=after)
        if affected and effective_from > now:
            announce_price_change(
                tenants=affected,
                subject=f"Price plan change from {effective_from:%Y-%m-%d}",
                text=(
                    f"From {effective_from:%Y-%m-%d %H:%M} UTC your messages are charged by the plan {plan.name}. "
                    "See GET /api/v1/billing/prices."
                ),
                actor=actor,
                details=after,
                effective_from=effective_from,
            )
    return assignment


def _own_plan(tenant: Tenant, at: datetime) -> bool:
    return own_plan_at(tenant=tenant, at=at) is not None


def save_plan(*, plan: Plan, actor: Actor, code: str, name: str) -> Plan:
    """Edit a plan's code or name (what it charges changes only through prices and the default
    flag, which have their own services). Recorded (R-AUD-3)."""
    with transaction.atomic():
        before = {"code": plan.code, "name": plan.name} if plan.pk else None
        plan.code, plan.name = code, name
        if plan.pk:
            plan.save(update_fields=["code", "name"])
        else:
            plan.is_default = False  # a new plan becomes the default only through set_default_plan
            plan.save()
        record_operation(
            actor=actor, action="billing.save_plan", obj=plan, before=before, after={"code": code, "name": name}
        )
    return plan
