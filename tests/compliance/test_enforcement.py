"""R-CMP-6 enforcement ladder (without money), R-CMP-7 complaints and escalation, R-CMP-4 inbound keywords."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from compliance import actors, services
from compliance.models import Complaint, ComplaintStatus, EnforcementAction, OptOut, OptOutRemoval
from tenants.models import OperationRecord, TenantState
from tenants.services import InvalidStateTransition, reactivate_tenant

from .conftest import approved_signature, approved_template

OPERATOR = services.Actor(kind="user", id="1", label="user:op")
CN1 = "+8613800138001"


def test_r_cmp_6_every_action_needs_a_reason(tenant_a):
    with pytest.raises(services.ReasonRequired):
        services.warn_tenant(tenant=tenant_a, actor=OPERATOR, reason=" ")


def test_r_cmp_6_actions_record_operator_and_reason(tenant_a):
    violation = services.record_violation(
        tenant=tenant_a, category="gambling", evidence="msg 42", actor=OPERATOR, message_count=3
    )
    action = services.warn_tenant(tenant=tenant_a, actor=OPERATOR, reason="gambling ads", violation=violation)
    assert (action.operator, action.reason, action.violation_id) == ("user:op", "gambling ads", violation.pk)
    assert OperationRecord.objects.filter(action="enforcement.warning", tenant=tenant_a, reason="gambling ads").exists()


def test_r_cmp_6_rectification_deadline_is_kept(tenant_a):
    deadline = timezone.now() + timedelta(days=7)
    services.order_rectification(tenant=tenant_a, deadline=deadline, actor=OPERATOR, reason="fix templates")
    assert services.settings_for(tenant=tenant_a).rectification_deadline == deadline


def test_r_cmp_6_suspend_then_reactivate_restores_sending(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    services.suspend_sending(tenant=tenant_a, actor=OPERATOR, reason="spam")
    reactivate_tenant(tenant=tenant_a, actor=OPERATOR, reason="rectified")
    result = services.check_message(
        tenant=tenant_a, signature="AcmeBrand", template=template.code, params={"code": "1234"}, recipients=[CN1]
    )
    assert result.verdicts[0].allowed


def test_r_cmp_6_terminated_tenant_stays_terminated(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    services.terminate(tenant=tenant_a, actor=OPERATOR, reason="fraud")
    tenant_a.refresh_from_db()
    assert tenant_a.state == TenantState.TERMINATED
    with pytest.raises(InvalidStateTransition):
        reactivate_tenant(tenant=tenant_a, actor=OPERATOR, reason="please")
    with pytest.raises(services.SendingSuspended) as caught:
        services.check_message(
            tenant=tenant_a, signature="AcmeBrand", template=template.code, params={"code": "1234"}, recipients=[CN1]
        )
    assert caught.value.code == "tenant_terminated"
    assert EnforcementAction.objects.get(tenant=tenant_a).kind == "terminate"


def test_r_cmp_6_terminated_tenant_api_key_no_longer_works(client_a, tenant_a):
    services.terminate(tenant=tenant_a, actor=OPERATOR, reason="fraud")
    assert client_a.get("/api/v1/signatures").status_code in {401, 403}


def test_r_cmp_6_penalty_needs_a_count(tenant_a):
    with pytest.raises(services.ComplianceError):
        services.charge_penalty(tenant=tenant_a, actor=OPERATOR, reason="x")


def test_r_cmp_6_penalty_amounts_are_micro_units_and_configurable(settings):
    assert settings.COMPLIANCE_PENALTY_PER_MESSAGE == 1_000_000_000  # 1000 CNY
    assert settings.COMPLIANCE_PENALTY_PER_CHANNEL_CUT == 50_000_000_000  # 50000 CNY


def test_r_cmp_7_complaint_is_due_in_72_hours(tenant_a):
    complaint = services.file_complaint(tenant=tenant_a, source="12321", number=CN1, text="spam", actor=OPERATOR)
    assert complaint.answer_due_at - complaint.created_at == pytest.approx(
        timedelta(hours=72), abs=timedelta(seconds=5)
    )


def test_r_cmp_7_overdue_complaint_is_escalated_by_the_periodic_job(tenant_a):
    complaint = services.file_complaint(tenant=tenant_a, source="carrier", number=CN1, text="spam", actor=OPERATOR)
    on_time = services.file_complaint(tenant=tenant_a, source="carrier", number=CN1, text="spam 2", actor=OPERATOR)
    Complaint.objects.filter(pk=complaint.pk).update(answer_due_at=timezone.now() - timedelta(minutes=1))
    assert actors.escalate_overdue_complaints_job() == 1
    complaint.refresh_from_db()
    on_time.refresh_from_db()
    assert complaint.status == ComplaintStatus.ESCALATED
    assert on_time.status == ComplaintStatus.OPEN
    tenant_a.refresh_from_db()
    assert tenant_a.state == TenantState.ACTIVE  # auto-suspend is off by default


def test_r_cmp_7_overdue_complaint_suspends_when_configured(tenant_a, settings):
    settings.COMPLIANCE_SUSPEND_ON_OVERDUE_COMPLAINT = True
    complaint = services.file_complaint(tenant=tenant_a, source="carrier", number=CN1, text="spam", actor=OPERATOR)
    services.escalate_overdue_complaints(now=complaint.answer_due_at + timedelta(seconds=1))
    tenant_a.refresh_from_db()
    assert tenant_a.state == TenantState.SUSPENDED
    assert EnforcementAction.objects.get(tenant=tenant_a).kind == "suspend"


def test_r_cmp_7_answered_complaint_is_not_escalated(tenant_a):
    complaint = services.file_complaint(tenant=tenant_a, source="carrier", number=CN1, text="spam", actor=OPERATOR)
    services.answer_complaint(complaint=complaint, answer="sorry, removed", actor=OPERATOR)
    assert services.escalate_overdue_complaints(now=complaint.answer_due_at + timedelta(hours=1)) == 0


def test_r_cmp_4_inbound_opt_out_keyword_opts_out_at_once(tenant_a):
    with tenant_context(tenant_a):
        assert services.apply_inbound_keyword(tenant=tenant_a, number="8613800138001", text="退订") == "opt_out"
        assert OptOut.objects.get(number=CN1).source == "keyword"


def test_r_cmp_4_inbound_start_opts_back_in_with_a_record(tenant_a):
    with tenant_context(tenant_a):
        services.apply_inbound_keyword(tenant=tenant_a, number=CN1, text="TD")
        assert services.apply_inbound_keyword(tenant=tenant_a, number=CN1, text="START") == "opt_in"
        assert not OptOut.objects.filter(number=CN1).exists()
        assert OptOutRemoval.objects.get(number=CN1).removed_by == "recipient opt-in keyword"


def test_r_cmp_4_other_inbound_text_is_ignored(tenant_a):
    with tenant_context(tenant_a):
        assert services.apply_inbound_keyword(tenant=tenant_a, number=CN1, text="thanks!") is None
        assert not OptOut.objects.exists()


def test_r_cmp_4_inbound_opt_out_blocks_the_next_send(tenant_a):
    approved_signature(tenant_a)
    template = approved_template(tenant_a)
    with tenant_context(tenant_a):
        services.apply_inbound_keyword(tenant=tenant_a, number=CN1, text="STOP")
    result = services.check_message(
        tenant=tenant_a, signature="AcmeBrand", template=template.code, params={"code": "1234"}, recipients=[CN1]
    )
    assert result.verdicts[0].reason == "opted_out"


def test_r_cmp_8_prune_keeps_recent_counters(tenant_a):
    from compliance.models import VolumeCounter

    now = timezone.now()
    VolumeCounter.objects.create(tenant=tenant_a, granularity="minute", bucket_start=now - timedelta(days=3), count=5)
    VolumeCounter.objects.create(tenant=tenant_a, granularity="minute", bucket_start=now, count=5)
    assert services.prune_volume_counters(now=now) == 1


def test_r_cmp_4_inbound_keyword_from_an_unusable_number_is_ignored(tenant_a):
    with tenant_context(tenant_a):
        assert services.apply_inbound_keyword(tenant=tenant_a, number="ALIPAY", text="T") is None
        assert not OptOut.objects.exists()
