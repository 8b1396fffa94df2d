"""R-TEN-6 (002 §4.1.2): after a registration change the tenant updates its data within 10
working days: told at once, reminded before the deadline, operators alerted when it passes; the
profile update fulfils the duty."""

from datetime import date, datetime, timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tenants import qualifications, registration, registration_updates
from tenants.models import Notice, NoticeKind, OperationRecord, RegistrationUpdateDuty

from .conftest import SYSTEM

MONDAY = date(2026, 3, 9)  # no public holiday in the following three weeks


def local(y, m, d, h=0, mi=0):
    return timezone.make_aware(datetime(y, m, d, h, mi))


def notices(tenant, state):
    return Notice.objects.filter(tenant=tenant, kind=NoticeKind.QUALIFICATION, data__state=state)


def test_deadline_is_the_end_of_the_tenth_working_day_and_the_tenant_is_told_at_once_R_TEN_6(tenant_a):
    duty = registration_updates.open_update_duty(tenant=tenant_a, changed_on=MONDAY, actor=SYSTEM)
    assert timezone.localtime(duty.due_at).date() == date(2026, 3, 23)  # two weekends skipped
    assert timezone.localtime(duty.due_at).hour == 23
    assert notices(tenant_a, "opened").get().data["registration_update_id"] == duty.pk
    assert OperationRecord.objects.filter(action="registration_update.open", tenant=tenant_a).exists()


def test_reminder_before_the_deadline_then_overdue_alert_to_operators_once_R_TEN_6(
    tenant_a, admins, django_capture_on_commit_callbacks
):
    duty = registration_updates.open_update_duty(tenant=tenant_a, changed_on=MONDAY, actor=SYSTEM)
    assert registration_updates.remind_update_duties(now=local(2026, 3, 17, 10)) == 0  # too early
    assert registration_updates.remind_update_duties(now=local(2026, 3, 18, 10)) == 1
    assert notices(tenant_a, "reminder").count() == 1
    assert registration_updates.remind_update_duties(now=local(2026, 3, 19, 10)) == 0  # reminded once
    assert registration_updates.remind_update_duties(now=local(2026, 3, 23, 22)) == 0  # still on time
    with django_capture_on_commit_callbacks(execute=True):
        assert registration_updates.remind_update_duties(now=local(2026, 3, 24, 9)) == 1
    assert notices(tenant_a, "overdue").count() == 1
    assert [m.subject for m in mail.outbox if "R-TEN-6" in m.subject]
    assert OperationRecord.objects.filter(action="registration_update.overdue", object_id=str(duty.pk)).exists()
    assert registration_updates.remind_update_duties(now=local(2026, 3, 25, 9)) == 0


def test_updating_the_profile_fulfils_the_duty_and_stops_reminders_R_TEN_6(tenant_a):
    registration_updates.open_update_duty(tenant=tenant_a, changed_on=MONDAY, actor=SYSTEM)
    registration.update_tenant_profile(tenant=tenant_a, changes={"contact_name": "New Contact"}, actor=SYSTEM)
    duty = RegistrationUpdateDuty.objects.get(tenant=tenant_a)
    assert duty.fulfilled_at is not None
    assert registration_updates.remind_update_duties(now=local(2026, 4, 1)) == 0


def test_a_second_change_while_one_is_open_keeps_one_duty_R_TEN_6(tenant_a):
    first = registration_updates.open_update_duty(tenant=tenant_a, changed_on=MONDAY, actor=SYSTEM)
    second = registration_updates.open_update_duty(tenant=tenant_a, changed_on=MONDAY + timedelta(days=1), actor=SYSTEM)
    assert first.pk == second.pk


def test_a_future_change_date_is_refused_R_TEN_6(tenant_a):
    with pytest.raises(registration_updates.RegistrationUpdateError) as info:
        registration_updates.open_update_duty(
            tenant=tenant_a, changed_on=timezone.localdate() + timedelta(days=2), actor=SYSTEM
        )
    assert info.value.details == {"field": "changed_on"}
    assert not RegistrationUpdateDuty.objects.filter(tenant=tenant_a).exists()


def test_filing_a_business_licence_with_another_number_opens_the_duty_R_TEN_6(tenant_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    pdf = SimpleUploadedFile("licence.pdf", b"%PDF-1.4 x", content_type="application/pdf")
    qualifications.file_qualification(
        tenant=tenant_a,
        kind="business_licence",
        title="new licence",
        number="91110000NEW0000001",
        file=pdf,
        actor=SYSTEM,
    )
    duty = RegistrationUpdateDuty.objects.get(tenant=tenant_a)
    assert duty.source == "qualification"
    same = SimpleUploadedFile("licence2.pdf", b"%PDF-1.4 y", content_type="application/pdf")
    registration.update_tenant_profile(tenant=tenant_a, changes={"contact_name": "x"}, actor=SYSTEM)
    qualifications.file_qualification(
        tenant=tenant_a, kind="business_licence", title="same", number=tenant_a.licence_number, file=same, actor=SYSTEM
    )
    assert RegistrationUpdateDuty.objects.filter(tenant=tenant_a, fulfilled_at__isnull=True).count() == 0


def test_operator_records_a_registration_change_in_the_admin_R_TEN_6(client, tenant_a):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("operator-reg", password="pw-x-1", is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    client.force_login(user)
    response = client.post(
        "/admin/tenants/registrationupdateduty/add/",
        {"tenant": tenant_a.pk, "changed_on": MONDAY.isoformat(), "note": "new address"},
    )
    assert response.status_code == 302, response.content[:2000]
    duty = RegistrationUpdateDuty.objects.get(tenant=tenant_a)
    assert duty.opened_by_label == "user:operator-reg"


def test_the_daily_job_is_scheduled_R_TEN_6():
    from tenants import actors
    from tenants.schedule import SCHEDULE

    assert any(p.actor is actors.remind_registration_updates_job for p in SCHEDULE)
