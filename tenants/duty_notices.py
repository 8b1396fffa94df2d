"""The notices other apps' duties send (R-DLV-7), one function per duty, each called by ONE line
in the owning service (listed in docs/operations.md "Notices"). Text in Chinese and English."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from .models import NoticeKind, Tenant, TenantKind, TenantState
from .notices import earliest_effective_at, notify


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def notify_complaint(*, complaint) -> None:
    """R-CMP-7: the tenant is told at once, with the 72-hour answer deadline."""
    due = _when(complaint.answer_due_at)
    notify(
        tenant=complaint.tenant,
        kind=NoticeKind.COMPLAINT,
        subject_zh=f"投诉通知（请于 {due} 前答复）",
        subject_en=f"Complaint filed: answer by {due}",
        body_zh=f"收到来自 {complaint.source} 的投诉：{complaint.text}\n请于 {due} 前通过 API 答复。",
        body_en=f"A complaint was filed ({complaint.source}): {complaint.text}\nAnswer through the API by {due}.",
        data={"complaint_id": complaint.pk, "answer_due_at": complaint.answer_due_at.isoformat()},
        dedupe_key=f"complaint:{complaint.pk}",
    )


def notify_maintenance(*, maintenance, now=None) -> int:
    """R-DLV-6: planned maintenance, to every live tenant (channels are shared)."""
    start, end = _when(maintenance.starts_at), _when(maintenance.ends_at)
    count = 0
    for tenant in Tenant.objects.exclude(kind=TenantKind.PLATFORM).exclude(state=TenantState.TERMINATED).iterator():
        notify(
            tenant=tenant,
            kind=NoticeKind.MAINTENANCE,
            subject_zh=f"计划维护：{start} 至 {end}",
            subject_en=f"Planned maintenance: {start} to {end}",
            body_zh=maintenance.notice,
            body_en=maintenance.notice,
            data={"maintenance_id": maintenance.pk, "ends_at": maintenance.ends_at.isoformat()},
            effective_at=maintenance.starts_at,
            dedupe_key=f"maintenance:{maintenance.pk}",
            now=now or maintenance.created_at,  # the instant delivery checked the period at
        )
        count += 1
    return count


def notify_price_change(*, price) -> int:
    """R-BIL-4: a price announced for later, to the tenants of its plan (a first price that starts
    at once is not a change: nobody is told)."""
    if price.effective_from <= price.announced_at:
        return 0
    from billing.models import Account, Price

    # A destination's first price may start within the notice period (billing's
    # check_price_notice): nobody was charged differently before, so it is not a change to tell.
    first = (
        not Price.objects.filter(
            plan=price.plan, message_type=price.message_type, country=price.country, carrier=price.carrier
        )
        .exclude(pk=price.pk)
        .exists()
    )
    if first and price.effective_from < earliest_effective_at(kind=NoticeKind.PRICE_CHANGE, now=price.announced_at):
        return 0
    from billing.services import default_plan

    accounts = Account.objects.filter(plan=price.plan)
    if price.plan_id == default_plan().pk:
        accounts = Account.objects.filter(Q(plan=price.plan) | Q(plan__isnull=True))
    tenant_ids = accounts.values_list("tenant_id", flat=True)
    amount = f"{price.unit_price / 1_000_000:.6f}".rstrip("0").rstrip(".")
    when = _when(price.effective_from)
    count = 0
    for tenant in Tenant.objects.filter(pk__in=tenant_ids).exclude(state=TenantState.TERMINATED).iterator():
        notify(
            tenant=tenant,
            kind=NoticeKind.PRICE_CHANGE,
            subject_zh=f"价格调整通知：{price.message_type} {price.country}",
            subject_en=f"Price change: {price.message_type} to {price.country}",
            body_zh=f"{price.message_type} 类短信（{price.country}）单价自 {when} 起调整为每条 {amount} 元。",
            body_en=f"The price of {price.message_type} messages to {price.country} becomes {amount} CNY per segment from {when}.",
            data={
                "price_id": price.pk,
                "unit_price": price.unit_price,
                "effective_from": price.effective_from.isoformat(),
            },
            effective_at=price.effective_from,
            dedupe_key=f"price:{price.pk}",
            now=price.announced_at,
        )
        count += 1
    return count


def notify_low_balance(*, tenant: Tenant, balance_text: str, threshold_text: str, crossing_id: str) -> None:
    """R-BIL-6 (billing sends its own e-mail and webhook today: inbox only, no second e-mail)."""
    notify(
        tenant=tenant,
        kind=NoticeKind.LOW_BALANCE,
        subject_zh=f"余额不足提醒：{balance_text}",
        subject_en=f"Low balance: {balance_text}",
        body_zh=f"账户余额 {balance_text}，已低于提醒阈值 {threshold_text}，请及时充值。",
        body_en=f"The balance is {balance_text}, below your alert threshold of {threshold_text}. Please top up.",
        dedupe_key=f"low_balance:{crossing_id}",
        channels=("inbox",),
    )


def notify_dormancy(*, case) -> None:
    """R-TEN-4 (billing sends its own e-mail today: inbox and webhook here, no second e-mail)."""
    after = _when(case.act_after)
    notify(
        tenant=case.tenant,
        kind=NoticeKind.DORMANCY,
        subject_zh="账户长期未使用提醒",
        subject_en=f"Dormant account: {case.get_kind_display()}",
        body_zh=f"您的账户长期未使用，如 {after} 前仍未使用，平台将按协议处理。",
        body_en=f"{case.get_kind_display()}. Unless the account is used again, action is taken after {after}.",
        data={"dormancy_case_id": case.pk, "kind": case.kind, "act_after": case.act_after.isoformat()},
        dedupe_key=f"dormancy:{case.pk}",
        channels=("inbox", "webhook"),
    )
