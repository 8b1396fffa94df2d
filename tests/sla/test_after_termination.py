"""R-TEN-8: a terminated tenant's data (send log, templates, signatures, opt-outs, consents) is
handed back as an export; its schema and personal data are deleted on a schedule once R-AUD-1
(six calendar months after the youngest record) and R-AUD-5 (legal holds) allow; the deletion
is recorded."""

import csv
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from delivery.sendlog.retention import earliest_purge
from tenants import after_termination, legal_hold, services
from tenants.models import (
    AfterTermination,
    AfterTerminationState,
    HoldBasis,
    Notice,
    NoticeKind,
    OperationRecord,
    Tenant,
)

from ..audit.conftest import make_message
from .conftest import SYSTEM


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [name])
        return cursor.fetchone() is not None


@pytest.fixture
def gone(make_tenant, media):
    """A tenant with a send log, a template, a signature, an opt-out and a consent, then terminated."""
    from compliance.models import Consent, OptOut, Signature, Template, TemplateVersion

    tenant = make_tenant("Gone Trading Co.")
    make_message(tenant, recipient="+8613900001111", age=timedelta(days=3))
    Signature.objects.create(tenant=tenant, text="GoneCo", status="approved")
    template = Template.objects.create(tenant=tenant, code=f"GONE{tenant.pk}", name="code", message_type="verification")
    TemplateVersion.objects.create(template=template, number=1, body="Your code is ${code}", status="approved")
    with schema_context(tenant.schema_name):
        OptOut.objects.create(number="+8613900002222", source="api")
        Consent.objects.create(number="+8613900003333", source="web form", granted_at=timezone.now())
    connection.set_schema_to_public()
    services.terminate_tenant(tenant=tenant, actor=SYSTEM, reason="contract ended")
    return Tenant.objects.get(pk=tenant.pk)


def run(now=None):
    return after_termination.process_terminated_tenants(now=now)


def test_terminated_tenant_gets_its_data_back_as_an_export_R_TEN_8(gone, media):
    run()
    case = AfterTermination.objects.get(tenant=gone)
    assert case.state == AfterTerminationState.EXPORTED
    path = Path(media) / case.export_file
    import hashlib

    assert hashlib.sha256(path.read_bytes()).hexdigest() == case.export_sha256
    with zipfile.ZipFile(path) as archive:
        send_log = list(csv.DictReader(io.StringIO(archive.read("send_log.csv").decode("utf-8-sig"))))
        assert any("+8613900001111" in json.dumps(row) for row in send_log)  # its own data: unmasked
        assert json.loads(archive.read("templates.json"))[0]["versions"][0]["body"] == "Your code is ${code}"
        assert json.loads(archive.read("signatures.json"))[0]["text"] == "GoneCo"
        assert json.loads(archive.read("opt_outs.json"))[0]["number"] == "+8613900002222"
        assert json.loads(archive.read("consents.json"))[0]["source"] == "web form"
    assert case.export_counts["send_log"] == 1
    assert Notice.objects.filter(tenant=gone, kind=NoticeKind.TERMINATION).count() == 1
    assert OperationRecord.objects.filter(action="termination.export", tenant=gone).count() == 1
    run()  # exported once
    assert OperationRecord.objects.filter(action="termination.export", tenant=gone).count() == 1


def test_nothing_is_deleted_before_six_calendar_months_after_the_youngest_record_R_TEN_8_R_AUD_1(gone):
    run()
    case = AfterTermination.objects.get(tenant=gone)
    assert case.delete_after >= earliest_purge(case.terminated_at)
    run(now=case.delete_after - timedelta(minutes=1))
    case.refresh_from_db()
    assert case.state == AfterTerminationState.EXPORTED
    assert "R-AUD-1" in case.blocked_reason
    assert schema_exists(gone.schema_name)


def test_schema_and_personal_data_are_deleted_once_allowed_and_recorded_R_TEN_8(gone):
    from delivery.sendlog.retention import purge_send_log
    from tenants.selectors import customer_tenants

    run()
    case = AfterTermination.objects.get(tenant=gone)
    run(now=case.delete_after + timedelta(hours=1))
    case.refresh_from_db()
    assert case.state == AfterTerminationState.DELETED
    assert not schema_exists(gone.schema_name)
    tenant = Tenant.objects.get(pk=gone.pk)
    assert (tenant.contact_name, tenant.contact_phone, tenant.contact_email) == ("", "", "")
    assert tenant.licence_number == gone.licence_number  # R-TEN-3: never registers again
    record = OperationRecord.objects.get(action="termination.delete", tenant=gone)
    assert record.after["schema"] == gone.schema_name
    # Jobs that walk the tenant schemas skip the dropped one.
    assert gone.pk not in [t.pk for t in customer_tenants()]
    purge_send_log(now=case.delete_after + timedelta(hours=2))
    run(now=case.delete_after + timedelta(days=1))  # nothing more to do, nothing recorded twice
    assert OperationRecord.objects.filter(action="termination.delete", tenant=gone).count() == 1


def test_an_active_legal_hold_keeps_everything_and_says_so_until_released_R_TEN_8_R_AUD_5(gone):
    run()
    case = AfterTermination.objects.get(tenant=gone)
    hold = legal_hold.place_hold(
        tenant=gone, basis=HoldBasis.AUTHORITY_REQUEST, reference="PSB-1", reason="police request", actor=SYSTEM
    )
    later = case.delete_after + timedelta(hours=1)
    run(now=later)
    case.refresh_from_db()
    assert case.state == AfterTerminationState.EXPORTED
    assert "R-AUD-5" in case.blocked_reason
    assert schema_exists(gone.schema_name)
    assert OperationRecord.objects.filter(action="termination.delete_held", tenant=gone).exists()
    legal_hold.release_hold(hold=hold, actor=SYSTEM, reason="case closed")
    run(now=later)
    case.refresh_from_db()
    assert case.state == AfterTerminationState.DELETED


def test_tenants_that_are_not_terminated_are_never_touched_R_TEN_8(tenant_a, media):
    run(now=timezone.now() + timedelta(days=400))
    assert not AfterTermination.objects.filter(tenant=tenant_a).exists()
    assert schema_exists(tenant_a.schema_name)


def test_export_download_needs_permission_and_is_recorded_R_TEN_8(gone, client):
    from django.contrib.auth.models import Group, User

    run()
    case = AfterTermination.objects.get(tenant=gone)
    url = f"/admin/tenants/aftertermination/{case.pk}/download/"
    auditor = User.objects.create_user("auditor-term", password="pw-x-1", is_staff=True)
    auditor.groups.add(Group.objects.get(name="auditor"))
    client.force_login(auditor)
    assert client.get(url).status_code == 403
    operator = User.objects.create_user("operator-term", password="pw-x-1", is_staff=True)
    operator.groups.add(Group.objects.get(name="operator"))
    client.force_login(operator)
    response = client.get(url)
    assert response.status_code == 200
    assert OperationRecord.objects.filter(action="termination.export_download", tenant=gone).exists()


def test_the_daily_job_is_scheduled_R_TEN_8():
    from tenants import actors
    from tenants.schedule import SCHEDULE

    assert any(p.actor is actors.process_terminated_tenants_job for p in SCHEDULE)
