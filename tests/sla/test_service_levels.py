"""R-DLV-8: service-level targets per channel and tenant, evaluated from the send log; a breach
opens an incident, alerts operators (ADMINS e-mail + trail) and tells the affected tenants
(R-DLV-7); operators close incidents (recovery notice); the platform's own faults are compensated
through billing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from delivery import service_levels
from delivery.models import Incident, IncidentCause, IncidentCompensation, IncidentState, ServiceLevelTarget
from tenants.models import Notice, NoticeKind, OperationRecord

from .conftest import SYSTEM, messages


def target_for(channel=None, tenant=None, **kwargs):
    kwargs.setdefault("min_delivery_rate", Decimal("95"))
    kwargs.setdefault("min_messages", 5)
    kwargs.setdefault("settle_seconds", 300)
    return service_levels.create_target(name="t", channel=channel, tenant=tenant, actor=SYSTEM, **kwargs)


def evaluate(target, capture):
    with capture(execute=True):
        return service_levels.evaluate_target(target=target)


def test_delivery_rate_below_target_opens_incident_alerts_admins_and_tells_affected_tenants_R_DLV_8(
    tenant_a, tenant_b, channel, admins, django_capture_on_commit_callbacks
):
    messages(tenant_a, channel, delivered=6, undelivered=4)
    messages(tenant_b, channel, delivered=5)  # on the channel, nothing lost: not affected
    target = target_for(channel=channel)
    result = evaluate(target, django_capture_on_commit_callbacks)
    assert result.verdict == "breached"
    assert result.judged == 15
    assert result.delivered == 11
    incident = Incident.objects.get(target=target)
    assert incident.state == IncidentState.OPEN
    assert list(incident.tenants.all()) == [tenant_a]
    assert list(incident.channels.all()) == [channel]
    assert [m.to for m in mail.outbox if "[SLA]" in m.subject] == [["noc@example.com"]]
    assert OperationRecord.objects.filter(action="service_level.breach", object_id=str(incident.pk)).exists()
    assert Notice.objects.filter(tenant=tenant_a, kind=NoticeKind.INCIDENT, data__incident_id=incident.pk).exists()
    assert not Notice.objects.filter(tenant=tenant_b, kind=NoticeKind.INCIDENT, data__incident_id=incident.pk).exists()


def test_target_met_opens_nothing_R_DLV_8(tenant_a, channel, admins, django_capture_on_commit_callbacks):
    messages(tenant_a, channel, delivered=19, undelivered=1)
    target = target_for(channel=channel)
    assert evaluate(target, django_capture_on_commit_callbacks).verdict == "ok"
    assert not Incident.objects.filter(target=target).exists()
    assert not mail.outbox


def test_messages_without_receipt_past_settle_time_count_against_rate_and_latency_R_DLV_8(
    tenant_a, channel, django_capture_on_commit_callbacks
):
    """A channel that stops returning receipts must not look healthy (or fast)."""
    messages(tenant_a, channel, delivered=2, pending=8, latency=3)
    target = target_for(channel=channel, min_delivery_rate=None, max_latency_seconds=120)
    result = evaluate(target, django_capture_on_commit_callbacks)
    assert result.verdict == "breached"
    assert result.latency > 120
    assert result.breaches == [f"p90 receipt latency {result.latency:.0f} s > 120 s"]


def test_slow_receipts_breach_the_latency_target_R_DLV_8(tenant_a, channel, django_capture_on_commit_callbacks):
    messages(tenant_a, channel, delivered=10, latency=400)
    target = target_for(channel=channel, min_delivery_rate=None, max_latency_seconds=120)
    assert evaluate(target, django_capture_on_commit_callbacks).verdict == "breached"


def test_messages_younger_than_settle_time_are_not_judged_R_DLV_8(
    tenant_a, channel, django_capture_on_commit_callbacks
):
    messages(tenant_a, channel, pending=10, age=timedelta(minutes=2))  # receipts may still come
    target = target_for(channel=channel, settle_seconds=600)
    result = evaluate(target, django_capture_on_commit_callbacks)
    assert (result.verdict, result.judged) == ("no_data", 0)
    assert not Incident.objects.filter(target=target).exists()


def test_too_few_messages_give_no_verdict_R_DLV_8(tenant_a, channel, django_capture_on_commit_callbacks):
    messages(tenant_a, channel, undelivered=3)
    target = target_for(channel=channel, min_messages=5)
    assert evaluate(target, django_capture_on_commit_callbacks).verdict == "no_data"
    assert not Incident.objects.filter(target=target).exists()


def test_channel_target_ignores_other_channels_R_DLV_8(tenant_a, channel, django_capture_on_commit_callbacks):
    from delivery.models import Channel

    other = Channel.objects.create(name=f"{channel.name}-other", host="h", port=1, system_id="x", password="x")
    messages(tenant_a, other, undelivered=10)
    messages(tenant_a, channel, delivered=10)
    assert evaluate(target_for(channel=channel), django_capture_on_commit_callbacks).verdict == "ok"


def test_tenant_target_counts_only_that_tenants_messages_R_DLV_8(
    make_tenant, channel, tenant_b, django_capture_on_commit_callbacks
):
    tenant = make_tenant("SLA Tenant Co.")
    messages(tenant, channel, delivered=3, undelivered=7)
    messages(tenant_b, channel, delivered=10)
    target = target_for(tenant=tenant)
    result = evaluate(target, django_capture_on_commit_callbacks)
    assert (result.verdict, result.judged) == ("breached", 10)
    assert result.affected_tenant_ids == [tenant.pk]
    assert list(Incident.objects.get(target=target).tenants.all()) == [tenant]


def test_lasting_breach_extends_one_incident_and_tells_each_tenant_once_R_DLV_8(
    tenant_a, tenant_b, channel, admins, django_capture_on_commit_callbacks
):
    messages(tenant_a, channel, delivered=5, undelivered=5)
    target = target_for(channel=channel)
    evaluate(target, django_capture_on_commit_callbacks)
    messages(tenant_b, channel, undelivered=5)
    evaluate(target, django_capture_on_commit_callbacks)
    incident = Incident.objects.get(target=target)
    assert set(incident.tenants.all()) == {tenant_a, tenant_b}
    assert Notice.objects.filter(kind=NoticeKind.INCIDENT, data__incident_id=incident.pk).count() == 2
    assert len([m for m in mail.outbox if "[SLA]" in m.subject]) == 1  # one alert per incident


def test_recovery_is_alerted_and_closing_tells_tenants_recovery_R_DLV_8(
    tenant_a, channel, admins, django_capture_on_commit_callbacks
):
    rows = messages(tenant_a, channel, delivered=5, undelivered=5)
    target = target_for(channel=channel)
    evaluate(target, django_capture_on_commit_callbacks)
    from django_tenants.utils import schema_context

    from delivery.models import Message

    with schema_context(tenant_a.schema_name):  # the bad window has passed: all delivered now
        Message.objects.filter(pk__in=[m.pk for m in rows]).update(status="delivered")
    evaluate(target, django_capture_on_commit_callbacks)
    incident = Incident.objects.get(target=target)
    assert incident.recovered_at is not None
    assert incident.state == IncidentState.OPEN
    assert any("recovered" in m.subject for m in mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        service_levels.close_incident(
            incident=incident, actor=SYSTEM, resolution="SMSC restarted", cause=IncidentCause.PLATFORM
        )
    incident.refresh_from_db()
    assert incident.state == IncidentState.CLOSED
    assert incident.ended_at is not None
    recovery = Notice.objects.get(tenant=tenant_a, kind=NoticeKind.RECOVERY)
    assert recovery.data["incident_id"] == incident.pk
    assert OperationRecord.objects.filter(action="incident.close", object_id=str(incident.pk)).exists()


def test_closing_a_closed_incident_is_refused_R_DLV_8(tenant_a):
    incident = service_levels.open_incident(title="x", started_at=timezone.now(), tenants=[tenant_a], actor=SYSTEM)
    service_levels.close_incident(incident=incident, actor=SYSTEM, resolution="fixed")
    with pytest.raises(service_levels.IncidentClosed):
        service_levels.close_incident(incident=incident, actor=SYSTEM, resolution="again")
    assert Notice.objects.filter(tenant=tenant_a, kind=NoticeKind.RECOVERY).count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_delivery_rate": Decimal("150")}, "min_delivery_rate"),
        ({"min_delivery_rate": "abc"}, "min_delivery_rate"),
        ({"min_delivery_rate": Decimal("NaN")}, "min_delivery_rate"),
        ({"min_delivery_rate": None, "max_latency_seconds": None}, "min_delivery_rate"),
        ({"max_latency_seconds": -5}, "max_latency_seconds"),
        ({"max_latency_seconds": 900, "settle_seconds": 300}, "settle_seconds"),
        ({"latency_percentile": 100}, "latency_percentile"),
        ({"window_minutes": 0}, "window_minutes"),
    ],
)
def test_invalid_target_is_refused_with_its_field_and_nothing_saved_R_DLV_8(channel, kwargs, field):
    before = ServiceLevelTarget.objects.count()
    with pytest.raises(service_levels.ServiceLevelError) as info:
        target_for(channel=channel, **kwargs)
    assert info.value.details["field"] == field
    assert info.value.code == "invalid_service_level_target"
    assert ServiceLevelTarget.objects.count() == before


def _platform_incident(tenant):
    return service_levels.open_incident(
        title="SMSC down", started_at=timezone.now(), tenants=[tenant], cause=IncidentCause.PLATFORM, actor=SYSTEM
    )


def test_platform_fault_is_compensated_once_through_the_billing_ledger_R_DLV_8(tenant_a):
    from billing.models import LedgerEntry
    from billing.selectors import balance_of

    incident = _platform_incident(tenant_a)
    before = balance_of(tenant=tenant_a)
    item = service_levels.compensate(
        incident=incident, tenant=tenant_a, amount=500_000, reason="2 h outage", actor=SYSTEM
    )
    assert balance_of(tenant=tenant_a) == before + 500_000
    assert LedgerEntry.objects.get(pk=item.ledger_entry_id).amount == 500_000
    with pytest.raises(service_levels.CompensationRefused) as info:
        service_levels.compensate(incident=incident, tenant=tenant_a, amount=500_000, reason="again", actor=SYSTEM)
    assert info.value.code == "already_compensated"
    assert balance_of(tenant=tenant_a) == before + 500_000
    assert OperationRecord.objects.filter(action="incident.compensate", tenant=tenant_a).count() == 1


@pytest.mark.parametrize("amount", [0, -5, 1.5, True])
def test_compensation_amount_must_be_positive_micro_units_R_DLV_8(tenant_a, amount):
    incident = _platform_incident(tenant_a)
    with pytest.raises(service_levels.CompensationRefused):
        service_levels.compensate(incident=incident, tenant=tenant_a, amount=amount, reason="x", actor=SYSTEM)
    assert not IncidentCompensation.objects.filter(incident=incident).exists()


def test_only_platform_faults_and_affected_tenants_are_compensated_R_DLV_8(tenant_a, tenant_b):
    carrier = service_levels.open_incident(
        title="carrier", started_at=timezone.now(), tenants=[tenant_a], cause=IncidentCause.CARRIER, actor=SYSTEM
    )
    with pytest.raises(service_levels.CompensationRefused) as info:
        service_levels.compensate(incident=carrier, tenant=tenant_a, amount=10, reason="x", actor=SYSTEM)
    assert info.value.code == "not_platform_fault"
    with pytest.raises(service_levels.CompensationRefused) as info:
        service_levels.compensate(
            incident=_platform_incident(tenant_a), tenant=tenant_b, amount=10, reason="x", actor=SYSTEM
        )
    assert info.value.code == "tenant_not_affected"


def test_the_periodic_job_is_scheduled_R_DLV_8():
    from delivery import actors
    from delivery.schedule import SCHEDULE

    assert any(p.actor is actors.evaluate_service_levels_job for p in SCHEDULE)


def test_prometheus_alert_rules_parse_and_cover_rate_latency_and_the_job_R_DLV_8():
    from pathlib import Path

    import yaml

    rules = yaml.safe_load((Path(__file__).parents[2] / "deploy" / "alerts_sla.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"ChannelDeliveryRateLow", "ChannelReceiptLatencyHigh", "ServiceLevelJobNotRunning"} <= names
    assert all(rule["expr"].strip() for group in rules["groups"] for rule in group["rules"])
