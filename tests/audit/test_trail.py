"""R-AUD-3: the operation trail is append-only and exportable by auditors."""

import pytest
from django.db import DatabaseError, connection, transaction

from delivery.models import ExportJob
from tenants import services
from tenants.models import OperationRecord

from .conftest import grant


def test_operation_record_update_is_refused_by_the_database_R_AUD_3(db):
    record = services.record_operation(actor=services.Actor.system("t"), action="trail.test")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        OperationRecord.objects.filter(pk=record.pk).update(reason="rewritten")


def test_operation_record_delete_is_refused_by_the_database_R_AUD_3(db):
    record = services.record_operation(actor=services.Actor.system("t"), action="trail.test")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM tenants_operationrecord WHERE id = %s", [record.pk])
    assert OperationRecord.objects.filter(pk=record.pk).exists()


def test_auditor_exports_the_trail_from_the_admin_and_the_export_is_recorded_R_AUD_3(client, auditor):
    services.record_operation(actor=services.Actor.system("t"), action="trail.export", reason="=evil()")
    client.force_login(auditor)
    page = client.get("/admin/tenants/operationrecord/")
    assert page.status_code == 200
    assert b"Export" in page.content
    response = client.post(
        "/admin/tenants/operationrecord/export/?action=trail.export",
        {
            "format": "0",
            "resource": "0",
            "operationrecordresource_action": "on",
            "operationrecordresource_reason": "on",
            "operationrecordresource_id": "on",
        },
    )
    assert response.status_code == 200, response.content[:500]
    text = response.content.decode("utf-8-sig")
    assert "trail.export" in text
    assert "'=evil()" in text
    job = ExportJob.objects.filter(kind="operation_records", requested_by=auditor).latest("id")
    assert job.rows_written == 1
    assert len(job.sha256) == 64
    assert OperationRecord.objects.filter(action="export.operation_records", object_id=str(job.pk)).exists()


def test_user_without_export_permission_sees_no_trail_export(client, operator_user):
    client.force_login(operator_user)
    response = client.get("/admin/tenants/operationrecord/export/")
    assert response.status_code == 403


def test_grant_helper_gives_permission(auditor):
    assert grant(auditor, "delivery.view_full_number").has_perm("delivery.view_full_number")
