"""The operators' side of R-DLV-8 (and R-TEN-8/R-TEN-6) in the admin, by role: each write goes
through the service, is permission-checked and recorded in the operation trail (R-AUD-3)."""

from django.contrib.auth.models import Group, User
from django.utils import timezone

from delivery import service_levels
from delivery.models import Incident, IncidentCause, IncidentCompensation, IncidentState, ServiceLevelTarget
from tenants.models import OperationRecord

from .conftest import SYSTEM


def role_user(role: str) -> User:
    user = User.objects.create_user(f"{role}-sla", password="pw-sla-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


TARGET = {
    "name": "channel 1 rate",
    "min_delivery_rate": "97.5",
    "latency_percentile": "90",
    "window_minutes": "60",
    "settle_seconds": "600",
    "min_messages": "20",
    "enabled": "on",
}


def test_operator_sets_a_channel_target_in_the_admin_R_DLV_8(client, channel):
    client.force_login(role_user("operator"))
    response = client.post("/admin/delivery/serviceleveltarget/add/", {**TARGET, "channel": channel.pk})
    assert response.status_code == 302, response.content[:2000]
    target = ServiceLevelTarget.objects.get(name="channel 1 rate")
    assert target.channel == channel
    assert str(target.min_delivery_rate) == "97.50"
    assert OperationRecord.objects.filter(
        action="service_level.target.create", object_id=str(target.pk), actor_label="user:operator-sla"
    ).exists()


def test_invalid_target_in_the_admin_saves_nothing_R_DLV_8(client, channel):
    client.force_login(role_user("operator"))
    response = client.post(
        "/admin/delivery/serviceleveltarget/add/", {**TARGET, "channel": channel.pk, "min_delivery_rate": ""}
    )
    assert response.status_code in (200, 302)
    assert not ServiceLevelTarget.objects.filter(name="channel 1 rate").exists()


def test_auditor_may_not_set_targets_R_DLV_8(client, channel):
    client.force_login(role_user("auditor"))
    response = client.post("/admin/delivery/serviceleveltarget/add/", {**TARGET, "channel": channel.pk})
    assert response.status_code == 403
    assert not ServiceLevelTarget.objects.exists()


def test_operator_closes_an_incident_in_the_admin_R_DLV_8(client, tenant_a, django_capture_on_commit_callbacks):
    incident = service_levels.open_incident(
        title="SMSC down", started_at=timezone.now(), tenants=[tenant_a], actor=SYSTEM
    )
    client.force_login(role_user("operator"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/delivery/incident/{incident.pk}/change/",
            {
                "resolution_text": "bind restored",
                "impact_text": "40 min of delays",
                "cause_choice": "platform",
            },
        )
    assert response.status_code == 302, response.content[:2000]
    incident.refresh_from_db()
    assert (incident.state, incident.cause, incident.impact) == (IncidentState.CLOSED, "platform", "40 min of delays")
    assert OperationRecord.objects.get(action="incident.close", object_id=str(incident.pk)).actor_label == (
        "user:operator-sla"
    )


def test_finance_compensates_a_platform_fault_in_the_admin_and_operator_may_not_R_DLV_8(client, tenant_a):
    incident = service_levels.open_incident(
        title="SMSC down", started_at=timezone.now(), tenants=[tenant_a], cause=IncidentCause.PLATFORM, actor=SYSTEM
    )
    form = {"incident": incident.pk, "tenant": tenant_a.pk, "amount": "250000", "reason": "outage"}
    client.force_login(role_user("operator"))
    assert client.post("/admin/delivery/incidentcompensation/add/", form).status_code == 403
    client.force_login(role_user("finance"))
    response = client.post("/admin/delivery/incidentcompensation/add/", form)
    assert response.status_code == 302, response.content[:2000]
    item = IncidentCompensation.objects.get(incident=incident)
    assert item.amount == 250_000
    assert item.ledger_entry_id
    assert Incident.objects.get(pk=incident.pk).compensations.count() == 1
