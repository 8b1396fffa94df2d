"""R-AUD-2: auditor exports of the send log — masking, neutralising, filters, records, background."""

import csv
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from delivery.actors import run_export_job
from delivery.models import ExportJob, ExportState
from delivery.sendlog.export import (
    SendLogFilters,
    SendLogResource,
    iter_send_log,
    message_queryset,
    neutralise,
)
from delivery.sendlog.jobs import produce_export, request_export
from smsplatform.masking import mask_number
from tenants.models import OperationRecord

from .conftest import make_message


def read_csv(job: ExportJob, media: Path) -> list[dict]:
    with open(media / job.file_name, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_mask_number_keeps_prefix_and_last_four_R_AUD_2():
    assert mask_number("13812341234") == "138****1234"
    assert mask_number("+8613812341234") == "+86138****1234"


@pytest.mark.parametrize("cell", ["=1+1", "+86138", "-2", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_formula_cells_get_a_leading_quote_R_AUD_2(cell):
    assert neutralise(cell) == "'" + cell


def test_plain_cells_are_untouched():
    assert neutralise("hello=") == "hello="
    assert neutralise(42) == 42


def test_export_masks_numbers_without_view_full_number_R_AUD_2(tenant_a, auditor, export_media):
    make_message(tenant_a, recipient="+8613811112222")
    job = request_export(kind="send_log", fmt="csv", filters={"tenant_ids": [tenant_a.pk]}, user=auditor)
    rows = read_csv(job, export_media)
    assert rows
    assert all("****" in row["recipient"] for row in rows)
    assert not any("13811112222" in value for row in rows for value in row.values())
    assert job.full_numbers is False


def test_export_shows_full_numbers_with_view_full_number_R_AUD_2(tenant_a, full_auditor, export_media):
    make_message(tenant_a, recipient="+8613811113333")
    job = request_export(
        kind="send_log", fmt="csv", filters={"tenant_ids": [tenant_a.pk], "recipient": "13811113333"}, user=full_auditor
    )
    rows = read_csv(job, export_media)
    assert [row["recipient"] for row in rows] == ["'+8613811113333"]  # neutralised "+", not masked
    assert job.full_numbers is True


def test_csv_export_neutralises_formula_content_R_AUD_2(tenant_a, auditor, export_media):
    make_message(tenant_a, content='=HYPERLINK("http://evil")', client_ref="@ref", recipient="+8613811114444")
    job = request_export(
        kind="send_log", fmt="csv", filters={"tenant_ids": [tenant_a.pk], "recipient": "+8613811114444"}, user=auditor
    )
    (row,) = read_csv(job, export_media)
    assert row["content"] == '\'=HYPERLINK("http://evil")'
    assert row["client_ref"] == "'@ref"


def test_xlsx_export_stores_formula_content_as_text_without_apostrophe_R_AUD_2(tenant_a, auditor, export_media):
    """A typed text cell with Excel's quote prefix: never a formula, and no visible apostrophe
    (issue 14); times are real dates in the platform's zone."""
    make_message(tenant_a, content="=1+cmd|' /C calc'!A0", recipient="+8613811115555")
    job = request_export(
        kind="send_log", fmt="xlsx", filters={"tenant_ids": [tenant_a.pk], "recipient": "+8613811115555"}, user=auditor
    )
    sheet = load_workbook(export_media / job.file_name).active
    header = [c.value for c in sheet[1]]
    content = sheet.cell(row=2, column=header.index("content") + 1)
    assert content.value == "=1+cmd|' /C calc'!A0"
    assert content.data_type == "s"
    assert content.quotePrefix
    created = sheet.cell(row=2, column=header.index("created_at (Asia/Shanghai)") + 1)
    assert created.is_date


def test_json_export_keeps_every_send_log_field_R_AUD_1(tenant_a, auditor, export_media):
    message = make_message(tenant_a, recipient="+8613811116666", parts=2)
    job = request_export(
        kind="send_log", fmt="json", filters={"tenant_ids": [tenant_a.pk], "recipient": "+8613811116666"}, user=auditor
    )
    (row,) = json.loads((export_media / job.file_name).read_text())
    assert row["tenant"] == tenant_a.name
    assert row["signature"] == "Acme"
    assert row["template"] == "TPL_1"
    assert row["template_version"] == 2
    assert row["content"] == message.content
    assert row["type"] == "verification"
    assert row["segments"] == 1
    assert row["unit_price_micro"] == 35_000
    assert row["carrier_message_ids"] == f"c{message.pk}x1;c{message.pk}x2"
    assert row["status_history"].startswith("accepted@")
    assert "> delivered@" in row["status_history"]
    assert row["channel_id"] == 1
    assert row["client_ref"] == message.client_ref
    assert "receipt_error" in row


def test_filters_select_status_date_signature_and_template_R_AUD_2(tenant_a, auditor, export_media):
    keep = make_message(tenant_a, recipient="+8613822220001", status="undelivered", signature="Keep", template="TPL_K")
    make_message(tenant_a, recipient="+8613822220002", status="delivered", signature="Keep", template="TPL_K")
    make_message(tenant_a, recipient="+8613822220003", status="undelivered", signature="Other", template="TPL_K")
    make_message(
        tenant_a,
        recipient="+8613822220004",
        status="undelivered",
        signature="Keep",
        template="TPL_K",
        age=timedelta(days=40),
    )
    today = timezone.localdate()
    job = request_export(
        kind="send_log",
        fmt="csv",
        user=auditor,
        filters={
            "tenant_ids": [tenant_a.pk],
            "statuses": ["undelivered"],
            "signature": "Keep",
            "template": "TPL_K",
            "date_from": (today - timedelta(days=1)).isoformat(),
            "date_to": today.isoformat(),
        },
    )
    rows = read_csv(job, export_media)
    assert [int(row["message_id"]) for row in rows] == [keep.pk]


def test_cross_tenant_export_walks_every_chosen_schema_R_AUD_2(tenant_a, tenant_b, auditor, export_media):
    a = make_message(tenant_a, signature="Walk")
    b = make_message(tenant_b, signature="Walk")
    job = request_export(
        kind="send_log",
        fmt="csv",
        user=auditor,
        filters={"tenant_ids": [tenant_a.pk, tenant_b.pk], "signature": "Walk"},
    )
    rows = read_csv(job, export_media)
    assert {(row["schema"], int(row["message_id"])) for row in rows} == {
        (tenant_a.schema_name, a.pk),
        (tenant_b.schema_name, b.pk),
    }


def test_every_export_is_recorded_with_hash_and_row_count_R_AUD_2(tenant_a, auditor, export_media):
    make_message(tenant_a, signature="Rec")
    job = request_export(
        kind="send_log",
        fmt="csv",
        user=auditor,
        reason="court order 17",
        filters={"tenant_ids": [tenant_a.pk], "signature": "Rec"},
        ip_address="10.1.2.3",
    )
    data = (export_media / job.file_name).read_bytes()
    assert job.state == ExportState.DONE
    assert job.rows_written == 1
    assert job.sha256 == hashlib.sha256(data).hexdigest()
    record = OperationRecord.objects.get(action="export.send_log", object_id=str(job.pk))
    assert record.actor_label == f"user:{auditor.username}"
    assert record.ip_address == "10.1.2.3"
    assert record.after["sha256"] == job.sha256
    assert record.after["rows"] == 1
    assert record.after["filters"]["signature"] == "Rec"
    assert record.reason == "court order 17"


def test_export_without_permission_is_refused_R_AUD_2(tenant_a, operator_user):
    from delivery.sendlog.export import ExportError

    with pytest.raises(ExportError):
        request_export(kind="send_log", fmt="csv", filters={}, user=operator_user)


def test_large_export_goes_to_the_background_R_AUD_2(
    tenant_a, auditor, export_media, settings, django_capture_on_commit_callbacks
):
    settings.AUDIT_EXPORT_BACKGROUND_ROWS = 2
    for n in range(3):
        make_message(tenant_a, signature="Big", recipient=f"+86138333300{n:02d}")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = request_export(
            kind="send_log", fmt="csv", user=auditor, filters={"tenant_ids": [tenant_a.pk], "signature": "Big"}
        )
    assert job.background
    assert job.state == ExportState.QUEUED
    assert job.estimated_rows == 3
    assert len(callbacks) == 1  # run_export_job enqueued after commit


def test_background_export_contents_equal_the_filtered_queryset_R_AUD_2(tenant_a, auditor, export_media, settings):
    settings.AUDIT_EXPORT_CHUNK_ROWS = 7  # several chunks
    for n in range(20):
        make_message(
            tenant_a,
            signature="Chunk",
            status="delivered" if n % 3 else "undelivered",
            recipient=f"+86138444400{n:02d}",
        )
    filters = {"tenant_ids": [tenant_a.pk], "signature": "Chunk", "statuses": ["delivered"]}
    job = ExportJob.objects.create(
        kind="send_log",
        format="csv",
        filters=SendLogFilters.from_dict(filters).to_dict(),
        requested_by=auditor,
        requested_by_label="user:x",
        background=True,
        estimated_rows=13,
    )
    run_export_job.fn(job.pk)  # the actor's body, as the worker runs it
    job.refresh_from_db()
    rows = read_csv(job, export_media)
    from django_tenants.utils import schema_context

    with schema_context(tenant_a.schema_name):
        expected = list(
            message_queryset(filters=SendLogFilters.from_dict(filters))
            .order_by("id")
            .values_list("id", "recipient", "status", "content")
        )
    assert [(int(r["message_id"]), r["status"], r["content"]) for r in rows] == [(i, s, c) for i, _, s, c in expected]
    assert [r["recipient"] for r in rows] == ["'" + mask_number(n) for _, n, _, _ in expected]
    assert job.rows_written == len(expected) == 13
    assert job.state == ExportState.DONE


def test_iteration_holds_one_chunk_at_a_time(tenant_a, settings):
    """iter_send_log is a generator over keyset chunks: it yields before reading everything."""
    for n in range(5):
        make_message(tenant_a, signature="Lazy", recipient=f"+86138555500{n:02d}")
    rows = iter_send_log(filters=SendLogFilters.build(tenant_ids=[tenant_a.pk], signature="Lazy"), chunk_size=2)
    first = next(rows)
    assert first["signature"] == "Lazy"
    assert len([first, *rows]) == 5


def test_resource_headers_name_the_send_log_columns():
    headers = SendLogResource().headers()
    for column in (
        "tenant",
        "recipient",
        "signature",
        "template",
        "template_version",
        "content",
        "type",
        "segments",
        "unit_price_micro",
        "status_history",
        "channel_id",
        "carrier_message_ids",
        "receipt_error",
        "client_ref",
    ):
        assert column in headers


def test_produce_export_is_idempotent_once_done(tenant_a, auditor, export_media):
    make_message(tenant_a, signature="Idem")
    job = request_export(
        kind="send_log", fmt="csv", user=auditor, filters={"tenant_ids": [tenant_a.pk], "signature": "Idem"}
    )
    again = produce_export(job_id=job.pk)
    assert again.sha256 == job.sha256
    assert OperationRecord.objects.filter(action="export.send_log", object_id=str(job.pk)).count() == 1


def test_operation_records_export_to_json(auditor, export_media):
    from tenants import services

    services.record_operation(actor=services.Actor.system("t"), action="audit.test", reason="=cmd")
    job = request_export(kind="operation_records", fmt="csv", user=auditor, filters={"action": "audit.test"})
    rows = read_csv(job, export_media)
    assert rows
    assert rows[-1]["action"] == "audit.test"
    assert rows[-1]["reason"] == "'=cmd"


def test_xlsx_refuses_more_rows_than_a_sheet_holds(tenant_a, auditor, monkeypatch):
    from delivery.sendlog import jobs

    make_message(tenant_a, signature="Huge")
    monkeypatch.setattr(jobs, "XLSX_MAX_ROWS", 1)
    with pytest.raises(jobs.ExportError, match="XLSX"):
        request_export(kind="send_log", fmt="xlsx", user=auditor, filters={"signature": "Huge"})


def test_a_failed_export_is_recorded_too_R_AUD_2(auditor, export_media):
    job = ExportJob.objects.create(
        kind="send_log",
        format="csv",
        filters={"date_from": "not-a-date"},
        requested_by=auditor,
        requested_by_label="user:x",
        background=True,
    )
    with pytest.raises(Exception, match="Not a date"):
        run_export_job.fn(job.pk)
    job.refresh_from_db()
    assert job.state == ExportState.FAILED
    assert "Not a date" in job.error
    assert OperationRecord.objects.filter(action="export.send_log.failed", object_id=str(job.pk)).exists()
