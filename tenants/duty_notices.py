"""The notices other apps' duties send (R-DLV-7), one function per duty, each called by ONE line
in the owning service (listed in docs/operations.md "Notices"). Text in Chinese and English.

It sits just above tenants.notices and below compliance, billing and delivery, which call it:
it imports nothing of theirs, so they call down (no import circle)."""

from __future__ import annotations

from django.utils import timezone

from .models import NoticeKind, Tenant, TenantKind, TenantState
from .notices import notify
from .services import Actor


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


def notify_volume_held(*, tenant: Tenant, message_ids: list[int]) -> None:
    """R-CMP-8: the tenant's volume is held and how to answer (tenants.reconfirmation); once per
    hour of spike. Called by delivery's intake after a spike hold."""
    if not message_ids:
        return
    hour = timezone.now().strftime("%Y%m%d%H")
    notify(
        tenant=tenant,
        kind=NoticeKind.VOLUME_HELD,
        subject_zh="发送量异常，短信已暂停待确认",
        subject_en="Unusual volume: messages held for your re-confirmation",
        body_zh=(
            "您的账户发送量突增，部分短信已暂停发送。请通过 API 确认放行"
            "（POST /api/v1/held-volume/confirm）或取消（POST /api/v1/held-volume/cancel）。"
        ),
        body_en=(
            "Your account's volume rose sharply and some messages are held. Confirm them for sending "
            "(POST /api/v1/held-volume/confirm) or cancel them (POST /api/v1/held-volume/cancel)."
        ),
        data={"first_message_ids": sorted(message_ids)[:100], "held": len(message_ids)},
        dedupe_key=f"volume_held:{hour}",
        actor=Actor.system("compliance.volume"),
    )
