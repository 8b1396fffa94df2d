"""The 10-working-day update duty after a registration change (R-TEN-6, 002 §4.1.2).

A duty opens when an operator records that a tenant's registration changed, or when the tenant
files a business licence whose number differs from the registered one. The tenant is told at
once (a `qualification` notice with the deadline: the end of the 10th working day after the
change, on delivery's working-day calendar with public holidays and make-up days), reminded
3 working days before it (REGISTRATION_UPDATE_REMIND_DAYS_BEFORE), and when it passes operators
are e-mailed (ADMINS) and the tenant gets an overdue notice. Updating the real-name profile
(tenants.registration.update_tenant_profile) fulfils the duty.
"""

from __future__ import annotations

from datetime import date, datetime, time

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone
from rest_framework import status

from smsplatform.errors import DomainError

from .models import NoticeKind, RegistrationUpdateDuty, Tenant, TenantState
from .services import Actor, record_operation

UPDATE_WORKING_DAYS = 10


class RegistrationUpdateError(DomainError):
    code = "invalid_registration_update"
    http_status = status.HTTP_400_BAD_REQUEST


def _deadlines(changed_on: date) -> tuple[datetime, datetime]:
    from delivery.calendar import add_working_days

    start = timezone.make_aware(datetime.combine(changed_on, time(12, 0)))  # noon: DST-safe anchor
    before = getattr(settings, "REGISTRATION_UPDATE_REMIND_DAYS_BEFORE", 3)
    due_day = add_working_days(start, UPDATE_WORKING_DAYS)
    remind_day = add_working_days(start, max(UPDATE_WORKING_DAYS - before, 0))
    end_of = lambda moment: moment.replace(hour=23, minute=59, second=59, microsecond=0)  # noqa: E731
    return end_of(due_day), remind_day.replace(hour=9, minute=0, second=0, microsecond=0)


def _tell(duty: RegistrationUpdateDuty, *, state: str) -> None:
    from .notices import notify

    due = timezone.localtime(duty.due_at).strftime("%Y-%m-%d")
    texts = {
        "opened": ("注册信息变更：请于 {due} 前更新", "Registration changed: update it by {due}"),
        "reminder": ("提醒：请于 {due} 前更新注册信息", "Reminder: update your registration data by {due}"),
        "overdue": ("注册信息更新已逾期（截止 {due}）", "Registration update overdue (was due {due})"),
    }
    zh, en = (t.format(due=due) for t in texts[state])
    notify(
        tenant=duty.tenant,
        kind=NoticeKind.QUALIFICATION,
        subject_zh=zh,
        subject_en=en,
        body_zh=f"您的注册信息已于 {duty.changed_on} 变更。按协议须在 10 个工作日内（{due} 前）更新账户的实名信息与资质文件。",
        body_en=f"Your registration data changed on {duty.changed_on}. The agreement asks you to update your account's "
        f"real-name data and documents within 10 working days, by {due}.",
        data={"registration_update_id": duty.pk, "due_at": duty.due_at.isoformat(), "state": state},
        dedupe_key=f"registration_update:{duty.pk}:{state}",
    )


def open_update_duty(
    *, tenant: Tenant, changed_on: date, actor: Actor, source: str = "operator", note: str = ""
) -> RegistrationUpdateDuty:
    """Record a registration change; the tenant is told its deadline at once. One open duty per
    tenant: a second change while one is open returns the open one."""
    if changed_on > timezone.localdate():
        raise RegistrationUpdateError("The change date cannot be in the future.", details={"field": "changed_on"})
    if tenant.state == TenantState.TERMINATED:
        raise RegistrationUpdateError("The tenant is terminated.", details={"field": "tenant"})
    due_at, remind_at = _deadlines(changed_on)
    with transaction.atomic():
        Tenant.objects.select_for_update().get(pk=tenant.pk)  # one open duty, even under races
        open_duty = RegistrationUpdateDuty.objects.filter(tenant=tenant, fulfilled_at__isnull=True).first()
        if open_duty is not None:
            return open_duty
        duty = RegistrationUpdateDuty.objects.create(
            tenant=tenant,
            changed_on=changed_on,
            source=source,
            note=note,
            due_at=due_at,
            remind_at=remind_at,
            opened_by_label=actor.label,
        )
        record_operation(
            actor=actor,
            action="registration_update.open",
            tenant=tenant,
            obj=duty,
            after={"changed_on": str(changed_on), "due_at": due_at.isoformat(), "source": source},
        )
        _tell(duty, state="opened")
    return duty


def fulfil_update_duties(*, tenant: Tenant, actor: Actor) -> int:
    """The tenant's profile was updated: open duties are done (called by update_tenant_profile)."""
    now = timezone.now()
    done = 0
    for duty in RegistrationUpdateDuty.objects.select_for_update().filter(tenant=tenant, fulfilled_at__isnull=True):
        duty.fulfilled_at, duty.fulfilled_by_label = now, actor.label
        duty.save(update_fields=["fulfilled_at", "fulfilled_by_label"])
        record_operation(
            actor=actor,
            action="registration_update.fulfil",
            tenant=tenant,
            obj=duty,
            after={"late": now > duty.due_at},
        )
        done += 1
    return done


def remind_update_duties(*, now: datetime | None = None) -> int:
    """The daily job: a reminder before the deadline, then the overdue notice and an operator alert."""
    now = now or timezone.now()
    sent = 0
    open_duties = RegistrationUpdateDuty.objects.filter(fulfilled_at__isnull=True).select_related("tenant")
    for duty in open_duties.filter(overdue_at__isnull=True, remind_at__lte=now).order_by("pk"):
        with transaction.atomic():
            if now > duty.due_at:
                duty.overdue_at = now
                duty.save(update_fields=["overdue_at"])
                _tell(duty, state="overdue")
                record_operation(
                    actor=Actor.system("registration_updates"),
                    action="registration_update.overdue",
                    tenant=duty.tenant,
                    obj=duty,
                    after={"due_at": duty.due_at.isoformat()},
                )
                subject = f"[R-TEN-6] registration update overdue: {duty.tenant}"
                body = f"{duty.tenant} was due to update its registration data by {duty.due_at.isoformat()}."
                transaction.on_commit(lambda s=subject, b=body: mail_admins(s, b), robust=True)
                sent += 1
            elif duty.reminded_at is None:
                duty.reminded_at = now
                duty.save(update_fields=["reminded_at"])
                _tell(duty, state="reminder")
                sent += 1
    return sent
