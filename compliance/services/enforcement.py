"""R-CMP-6, R-CMP-7: violations, the enforcement ladder, rectification, complaints."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.services.ledger import forfeit, penalty
from tenants.duty_notices import notify_complaint
from tenants.models import Tenant, TenantState
from tenants.services import Actor, record_operation, suspend_tenant, terminate_tenant

from ..models import (
    ActionKind,
    Complaint,
    ComplaintStatus,
    ComplianceSettings,
    EnforcementAction,
    Template,
    Violation,
    VolumeCounter,
)
from ._base import ComplianceError, ReasonRequired, ReviewConflict, _now
from .options import update_compliance_settings

logger = logging.getLogger(__name__)


# --- R-CMP-6 enforcement ---------------------------------------------------------------------


def record_violation(
    *,
    tenant: Tenant,
    category: str,
    evidence: str,
    actor: Actor,
    template: Template | None = None,
    message_reference: str = "",
    message_count: int = 1,
) -> Violation:
    if not evidence.strip():
        raise ComplianceError("Evidence is required.", code="evidence_required")
    with transaction.atomic():
        violation = Violation.objects.create(
            tenant=tenant,
            category=category,
            template=template,
            message_reference=message_reference,
            message_count=message_count,
            evidence=evidence,
            recorded_by=actor.label,
        )
        record_operation(
            actor=actor,
            action="violation.record",
            tenant=tenant,
            obj=violation,
            after={"category": category, "message_count": message_count},
        )
    return violation


def _action(
    *, tenant: Tenant, kind: str, actor: Actor, reason: str, violation: Violation | None, details: dict | None = None
) -> EnforcementAction:
    if not reason.strip():
        raise ReasonRequired()
    action = EnforcementAction.objects.create(
        tenant=tenant, violation=violation, kind=kind, reason=reason, operator=actor.label, details=details or {}
    )
    record_operation(
        actor=actor, action=f"enforcement.{kind}", tenant=tenant, obj=action, reason=reason, after=details or {}
    )
    return action


def warn_tenant(*, tenant: Tenant, actor: Actor, reason: str, violation: Violation | None = None) -> EnforcementAction:
    with transaction.atomic():
        return _action(tenant=tenant, kind=ActionKind.WARNING, actor=actor, reason=reason, violation=violation)


def order_rectification(
    *, tenant: Tenant, deadline: datetime, actor: Actor, reason: str, violation: Violation | None = None
) -> EnforcementAction:
    with transaction.atomic():
        update_compliance_settings(
            tenant=tenant, changes={"rectification_deadline": deadline}, actor=actor, reason=reason
        )
        return _action(
            tenant=tenant,
            kind=ActionKind.RECTIFICATION,
            actor=actor,
            reason=reason,
            violation=violation,
            details={"deadline": deadline.isoformat()},
        )


def mark_rectification_done(*, tenant: Tenant, actor: Actor, reason: str = "") -> ComplianceSettings:
    """An operator confirms the tenant rectified in time (or late): no escalation after this (R-CMP-6)."""
    with transaction.atomic():
        row = ComplianceSettings.objects.select_for_update().filter(tenant_id=tenant.pk).first()
        if row is None or row.rectification_deadline is None:
            raise ReviewConflict("No rectification is ordered for this tenant.", code="no_rectification")
        if row.rectification_done_at is not None:
            raise ReviewConflict("This rectification is already marked done.", code="rectification_already_done")
        row.rectification_done_at, row.rectification_done_by = _now(), actor.label
        row.save(update_fields=["rectification_done_at", "rectification_done_by", "updated_at"])
        record_operation(
            actor=actor,
            action="rectification.done",
            tenant=tenant,
            obj=row,
            reason=reason,
            after={
                "deadline": row.rectification_deadline.isoformat(),
                "late": row.rectification_done_at > row.rectification_deadline,
            },
        )
    return row


OVERDUE_RECTIFICATION_ACTIONS = ("escalate", "suspend_sending")


def escalate_overdue_rectifications(*, now: datetime | None = None) -> int:
    """Periodic (R-CMP-6): a rectification deadline passed and not marked done is escalated once:
    recorded, the operators told (mail_admins after commit), and with
    COMPLIANCE_OVERDUE_RECTIFICATION_ACTION = "suspend_sending" the next ladder step taken through
    suspend_sending(). Runs twice → one escalation (rectification_escalated_at, row lock)."""
    from django.core.exceptions import ImproperlyConfigured

    mode = settings.COMPLIANCE_OVERDUE_RECTIFICATION_ACTION
    if mode not in OVERDUE_RECTIFICATION_ACTIONS:
        raise ImproperlyConfigured(
            f"COMPLIANCE_OVERDUE_RECTIFICATION_ACTION must be one of {OVERDUE_RECTIFICATION_ACTIONS}, not {mode!r}."
        )
    now = now or _now()
    actor = Actor.system("rectification-escalation")
    due = ComplianceSettings.objects.filter(
        rectification_deadline__lt=now, rectification_done_at__isnull=True, rectification_escalated_at__isnull=True
    ).values_list("pk", flat=True)
    escalated = 0
    for pk in list(due):
        with transaction.atomic():
            row = ComplianceSettings.objects.select_for_update().select_related("tenant").get(pk=pk)
            deadline = row.rectification_deadline
            if deadline is None or deadline >= now or row.rectification_done_at or row.rectification_escalated_at:
                continue  # changed since the scan
            row.rectification_escalated_at = now
            row.save(update_fields=["rectification_escalated_at", "updated_at"])
            tenant = row.tenant
            shown = timezone.localtime(deadline).strftime("%Y-%m-%d %H:%M")
            reason = f"Rectification deadline {shown} passed without being marked done (R-CMP-6)"
            ordered = (
                EnforcementAction.objects.filter(tenant=tenant, kind=ActionKind.RECTIFICATION)
                .order_by("-created_at", "-id")
                .first()
            )
            violation = ordered.violation if ordered else None
            suspended = mode == "suspend_sending" and tenant.state == TenantState.ACTIVE
            record_operation(
                actor=actor,
                action="rectification.escalate",
                tenant=tenant,
                obj=row,
                reason=reason,
                after={"deadline": deadline.isoformat(), "mode": mode, "suspended": suspended},
            )
            if suspended:
                suspend_sending(tenant=tenant, actor=actor, reason=reason, violation=violation)
            subject = f"Overdue rectification: {tenant.name}"
            body = f"{reason}.\nTenant: {tenant.name} ({tenant.schema_name})\n" + (
                "Sending was suspended (COMPLIANCE_OVERDUE_RECTIFICATION_ACTION=suspend_sending).\n"
                if suspended
                else "No automatic action: decide the next step on the violation's page.\n"
            )
            transaction.on_commit(lambda s=subject, b=body: _tell_operators(subject=s, body=b), robust=True)
            escalated += 1
    return escalated


def _tell_operators(*, subject: str, body: str) -> None:
    from django.core.mail import mail_admins

    mail_admins(subject, body, fail_silently=False)


def cap_volume(
    *,
    tenant: Tenant,
    actor: Actor,
    reason: str,
    per_minute: int | None = None,
    per_day: int | None = None,
    violation: Violation | None = None,
) -> EnforcementAction:
    """Cut the tenant's volume (004 §4.8): at most per_minute / per_day allowed messages (None lifts a cap)."""
    with transaction.atomic():
        update_compliance_settings(
            tenant=tenant, changes={"per_minute_cap": per_minute, "per_day_cap": per_day}, actor=actor, reason=reason
        )
        return _action(
            tenant=tenant,
            kind=ActionKind.VOLUME_CAP,
            actor=actor,
            reason=reason,
            violation=violation,
            details={"per_minute": per_minute, "per_day": per_day},
        )


def suspend_sending(
    *, tenant: Tenant, actor: Actor, reason: str, violation: Violation | None = None
) -> EnforcementAction:
    with transaction.atomic():
        suspend_tenant(tenant=tenant, actor=actor, reason=reason)
        return _action(tenant=tenant, kind=ActionKind.SUSPEND, actor=actor, reason=reason, violation=violation)


def forfeit_balance(
    *, tenant: Tenant, actor: Actor, reason: str, violation: Violation | None = None
) -> EnforcementAction:
    """Forfeit remaining packages and balance (004 §4.10, R-BIL-3) through billing."""
    with transaction.atomic():
        action = _action(tenant=tenant, kind=ActionKind.FORFEIT, actor=actor, reason=reason, violation=violation)
        forfeit(tenant=tenant, actor=actor, reason=reason, idempotency_key=f"compliance:forfeit:{action.pk}")
    return action


def charge_penalty(
    *,
    tenant: Tenant,
    actor: Actor,
    reason: str,
    illegal_messages: int = 0,
    channels_cut: int = 0,
    violation: Violation | None = None,
) -> EnforcementAction:
    """Liquidated damages (004 §7.4): per illegal message and per carrier channel cut, booked by billing."""
    if illegal_messages < 0 or channels_cut < 0 or illegal_messages + channels_cut == 0:
        raise ComplianceError("Give a positive number of illegal messages and/or channels cut.", code="invalid_field")
    amount = (
        illegal_messages * settings.COMPLIANCE_PENALTY_PER_MESSAGE
        + channels_cut * settings.COMPLIANCE_PENALTY_PER_CHANNEL_CUT
    )
    with transaction.atomic():
        action = _action(
            tenant=tenant,
            kind=ActionKind.PENALTY,
            actor=actor,
            reason=reason,
            violation=violation,
            details={"illegal_messages": illegal_messages, "channels_cut": channels_cut, "amount": amount},
        )
        penalty(
            tenant=tenant, amount=amount, actor=actor, reason=reason, idempotency_key=f"compliance:penalty:{action.pk}"
        )
    return action


def terminate(*, tenant: Tenant, actor: Actor, reason: str, violation: Violation | None = None) -> EnforcementAction:
    """Terminate the tenant for good (R-TEN-3, R-CMP-6)."""
    with transaction.atomic():
        terminate_tenant(tenant=tenant, actor=actor, reason=reason)
        return _action(tenant=tenant, kind=ActionKind.TERMINATE, actor=actor, reason=reason, violation=violation)


# --- R-CMP-7 complaints ----------------------------------------------------------------------


def file_complaint(
    *,
    tenant: Tenant,
    source: str,
    number: str,
    text: str,
    actor: Actor,
    message_reference: str = "",
    message_text: str = "",
) -> Complaint:
    """Record a complaint; the tenant must answer within COMPLIANCE_COMPLAINT_ANSWER_HOURS (72 h, 004 §4.2)."""
    with transaction.atomic():
        complaint = Complaint.objects.create(
            tenant=tenant,
            source=source,
            number=number,
            text=text,
            message_reference=message_reference,
            message_text=message_text,
            created_by=actor.label,
            answer_due_at=_now() + timedelta(hours=settings.COMPLIANCE_COMPLAINT_ANSWER_HOURS),
        )
        record_operation(
            actor=actor,
            action="complaint.file",
            tenant=tenant,
            obj=complaint,
            after={"source": source, "due": complaint.answer_due_at.isoformat()},
        )
        notify_complaint(complaint=complaint)  # R-CMP-7: the tenant is told at once (R-DLV-7)
    return complaint


def answer_complaint(*, complaint: Complaint, answer: str, actor: Actor) -> Complaint:
    """The tenant answers (allowed for a suspended tenant too). Late answers are kept, still late."""
    if not answer.strip():
        raise ComplianceError("The answer is empty.", code="answer_required")
    with transaction.atomic():
        complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
        if complaint.status not in (ComplaintStatus.OPEN, ComplaintStatus.ESCALATED):
            raise ReviewConflict(f"This complaint is {complaint.status}.")
        before = {"status": complaint.status}
        complaint.answer = answer
        complaint.answered_at = _now()
        complaint.status = ComplaintStatus.ANSWERED
        complaint.save(update_fields=["answer", "answered_at", "status"])
        record_operation(
            actor=actor,
            action="complaint.answer",
            tenant=complaint.tenant,
            obj=complaint,
            before=before,
            after={"status": complaint.status},
        )
    return complaint


def close_complaint(*, complaint: Complaint, actor: Actor, reason: str) -> Complaint:
    with transaction.atomic():
        complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
        before = {"status": complaint.status}
        complaint.status = ComplaintStatus.CLOSED
        complaint.save(update_fields=["status"])
        record_operation(
            actor=actor,
            action="complaint.close",
            tenant=complaint.tenant,
            obj=complaint,
            reason=reason,
            before=before,
            after={"status": complaint.status},
        )
    return complaint


def escalate_overdue_complaints(*, now: datetime | None = None) -> int:
    """Periodic (R-CMP-7): open complaints past their deadline are escalated to operators, and with
    COMPLIANCE_SUSPEND_ON_OVERDUE_COMPLAINT the tenant's sending is suspended."""
    now = now or _now()
    actor = Actor.system("complaint-escalation")
    escalated = 0
    overdue = Complaint.objects.filter(status=ComplaintStatus.OPEN, answer_due_at__lt=now).values_list("pk", flat=True)
    for pk in list(overdue):
        with transaction.atomic():
            complaint = Complaint.objects.select_for_update().select_related("tenant").get(pk=pk)
            if complaint.status != ComplaintStatus.OPEN:
                continue
            complaint.status = ComplaintStatus.ESCALATED
            complaint.escalated_at = now
            complaint.save(update_fields=["status", "escalated_at"])
            reason = f"Complaint #{complaint.pk} not answered within {settings.COMPLIANCE_COMPLAINT_ANSWER_HOURS} hours"
            record_operation(
                actor=actor,
                action="complaint.escalate",
                tenant=complaint.tenant,
                obj=complaint,
                reason=reason,
                after={"status": complaint.status},
            )
            if settings.COMPLIANCE_SUSPEND_ON_OVERDUE_COMPLAINT and complaint.tenant.state == TenantState.ACTIVE:
                suspend_tenant(tenant=complaint.tenant, actor=actor, reason=reason)
                _action(tenant=complaint.tenant, kind=ActionKind.SUSPEND, actor=actor, reason=reason, violation=None)
            escalated += 1
    return escalated


def prune_volume_counters(*, now: datetime | None = None) -> int:
    """Drop counter buckets nobody reads any more: minutes after 2 days, hours after 30 days (the spike
    baseline needs COMPLIANCE_SPIKE_BASELINE_HOURS), days after 400 days."""
    now = now or _now()
    keep = {
        "minute": timedelta(days=2),
        "hour": timedelta(days=30, hours=settings.COMPLIANCE_SPIKE_BASELINE_HOURS),
        "day": timedelta(days=400),
    }
    deleted = 0
    for granularity, age in keep.items():
        count, _ = VolumeCounter.objects.filter(granularity=granularity, bucket_start__lt=now - age).delete()
        deleted += count
    return deleted
