"""R-CMP-6 rectification follow-up: a deadline that passes without the rectification marked done is
escalated once by the periodic job (recorded, operators mailed) and, when configured, sending is
suspended through the enforcement service. Operators mark a rectification done in the admin."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from compliance import actors, services
from compliance.models import ActionKind, ComplianceSettings, EnforcementAction
from tenants.models import OperationRecord, TenantState

OPERATOR = services.Actor(kind="user", id="1", label="user:op")


@pytest.fixture(autouse=True)
def _operators_mailbox(settings):
    settings.ADMINS = [("operators", "ops@example.com")]


def _order(tenant, *, days_ago: int = 1):
    violation = services.record_violation(tenant=tenant, category="gambling", evidence="msg 7", actor=OPERATOR)
    deadline = timezone.now() - timedelta(days=days_ago)
    services.order_rectification(tenant=tenant, deadline=deadline, actor=OPERATOR, reason="fix it", violation=violation)
    return violation


def test_r_cmp_6_overdue_rectification_is_escalated_once_and_operators_are_told(
    tenant_a, django_capture_on_commit_callbacks
):
    _order(tenant_a)
    with django_capture_on_commit_callbacks(execute=True):
        assert actors.escalate_overdue_rectifications_job() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert actors.escalate_overdue_rectifications_job() == 0  # runs twice → one escalation
    assert OperationRecord.objects.filter(action="rectification.escalate", tenant=tenant_a).count() == 1
    assert len(mail.outbox) == 1
    assert tenant_a.name in mail.outbox[0].subject
    assert mail.outbox[0].to == ["ops@example.com"]
    tenant_a.refresh_from_db()
    assert tenant_a.state == TenantState.ACTIVE  # default mode "escalate": no automatic step
    assert ComplianceSettings.objects.get(tenant=tenant_a).rectification_escalated_at is not None


def test_r_cmp_6_overdue_rectification_suspends_when_configured(tenant_a, settings):
    settings.COMPLIANCE_OVERDUE_RECTIFICATION_ACTION = "suspend_sending"
    violation = _order(tenant_a)
    assert services.escalate_overdue_rectifications() == 1
    tenant_a.refresh_from_db()
    assert tenant_a.state == TenantState.SUSPENDED
    suspend = EnforcementAction.objects.get(tenant=tenant_a, kind=ActionKind.SUSPEND)
    assert suspend.violation_id == violation.pk  # the ladder step is linked to the violation
    assert suspend.operator == "rectification-escalation"
    assert "R-CMP-6" in suspend.reason
    with pytest.raises(services.SendingSuspended):
        services.check_message(tenant=tenant_a, signature="x", template="y", params={}, recipients=[])
    assert services.escalate_overdue_rectifications() == 0


def test_r_cmp_6_rectification_not_yet_due_or_marked_done_is_not_escalated(tenant_a, tenant_b):
    services.order_rectification(
        tenant=tenant_a, deadline=timezone.now() + timedelta(days=3), actor=OPERATOR, reason="fix it"
    )
    _order(tenant_b)
    services.mark_rectification_done(tenant=tenant_b, actor=OPERATOR, reason="templates fixed")
    assert services.escalate_overdue_rectifications() == 0
    record = OperationRecord.objects.get(action="rectification.done", tenant=tenant_b)
    assert record.after["late"] is True


def test_r_cmp_6_a_new_deadline_starts_a_new_rectification(tenant_a):
    _order(tenant_a, days_ago=5)
    assert services.escalate_overdue_rectifications() == 1
    _order(tenant_a, days_ago=1)  # ordered again, already overdue: escalated again, once
    assert services.escalate_overdue_rectifications() == 1
    assert services.escalate_overdue_rectifications() == 0


def test_r_cmp_6_marking_done_twice_or_without_a_deadline_is_refused(tenant_a):
    with pytest.raises(services.ReviewConflict) as missing:
        services.mark_rectification_done(tenant=tenant_a, actor=OPERATOR)
    assert missing.value.code == "no_rectification"
    _order(tenant_a)
    services.mark_rectification_done(tenant=tenant_a, actor=OPERATOR)
    with pytest.raises(services.ReviewConflict) as again:
        services.mark_rectification_done(tenant=tenant_a, actor=OPERATOR)
    assert again.value.code == "rectification_already_done"
    assert OperationRecord.objects.filter(action="rectification.done", tenant=tenant_a).count() == 1


def test_r_cmp_6_unknown_overdue_action_setting_is_a_configuration_error(tenant_a, settings):
    settings.COMPLIANCE_OVERDUE_RECTIFICATION_ACTION = "terminate"
    _order(tenant_a)
    with pytest.raises(ImproperlyConfigured):
        services.escalate_overdue_rectifications()
    assert ComplianceSettings.objects.get(tenant=tenant_a).rectification_escalated_at is None


def test_r_cmp_6_operator_marks_rectification_done_in_admin(client, operator_user, tenant_a, auditor_user):
    _order(tenant_a)
    row = ComplianceSettings.objects.get(tenant=tenant_a)
    payload = {"action": "mark_rectification_done", "_selected_action": [row.pk]}
    client.force_login(auditor_user)  # auditors look, never act
    client.post("/admin/compliance/compliancesettings/", payload)
    assert ComplianceSettings.objects.get(pk=row.pk).rectification_done_at is None
    client.force_login(operator_user)
    response = client.post("/admin/compliance/compliancesettings/", payload)
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.rectification_done_at is not None
    assert row.rectification_done_by == "user:operator1"
    assert OperationRecord.objects.filter(action="rectification.done", actor_label="user:operator1").exists()
    assert "DONE" in client.get("/admin/compliance/compliancesettings/").content.decode()
    assert services.escalate_overdue_rectifications() == 0
