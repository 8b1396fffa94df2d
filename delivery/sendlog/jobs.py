"""Export jobs (R-AUD-2, R-AUD-3): request an export, produce its file (now or in the worker),
serve it back, and say in words what it holds.

- `request_export` checks the user's permission, decides masking from `delivery.view_full_number`
  and runs small exports at once; bigger ones go to the worker (`run_export_job`, queue "audit").
- `produce_export` fills an ExportJob: file under MEDIA_ROOT/exports, row count, SHA-256,
  progress, and the operation-trail entry (R-AUD-3).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from delivery.models import ExportFormat, ExportJob, ExportKind, ExportState, Message
from smsplatform.jobs import enqueue
from tenants.models import Tenant
from tenants.selectors import customer_tenants
from tenants.services import Actor, record_operation

from .export import (
    ExportError,
    SendLogFilters,
    SendLogResource,
    StreamingResource,
    as_datetime,
    count_send_log,
    export_dir,
    file_sha256,
    iter_send_log,
    write_export,
)
from .trail import OperationRecordResource, iter_operation_records, operation_record_queryset

XLSX_MAX_ROWS = 1_048_576  # one sheet, header included

# --- export jobs ----------------------------------------------------------------------------


@dataclass
class _Progress:
    job_id: int
    seen: list[int] = field(default_factory=list)

    def __call__(self, count: int) -> None:
        ExportJob.objects.filter(pk=self.job_id).update(rows_written=count)


def rows_for_job(job: ExportJob) -> tuple[Iterator[Any], StreamingResource]:
    if job.kind == ExportKind.SEND_LOG:
        return iter_send_log(filters=SendLogFilters.from_dict(job.filters)), SendLogResource(
            full_numbers=job.full_numbers
        )
    if job.kind == ExportKind.OPERATION_RECORDS:
        return iter_operation_records(filters=job.filters), OperationRecordResource(full_numbers=job.full_numbers)
    raise ExportError(f"Unknown export kind {job.kind!r}", code="invalid_kind")


def estimate_rows(*, kind: str, filters: dict) -> int:
    if kind == ExportKind.SEND_LOG:
        return count_send_log(filters=SendLogFilters.from_dict(filters))
    return operation_record_queryset(filters=filters).count()


def _job_actor(job: ExportJob) -> Actor:
    return Actor(
        kind="user" if job.requested_by_id else "system",
        id=str(job.requested_by_id or ""),
        label=job.requested_by_label,
        ip_address=job.ip_address,
    )


def produce_export(*, job_id: int) -> ExportJob:
    """Produce the job's file (R-AUD-2) and record it (R-AUD-3). Idempotent for finished jobs."""
    job = ExportJob.objects.get(pk=job_id)
    if job.state in (ExportState.DONE, ExportState.FAILED):
        return job
    ExportJob.objects.filter(pk=job.pk).update(state=ExportState.RUNNING, started_at=timezone.now(), rows_written=0)
    name = f"{job.kind}-{job.pk}-{timezone.now():%Y%m%d%H%M%S}.{job.format}"
    path = export_dir() / name
    try:
        rows, resource = rows_for_job(job)
        count = write_export(rows=rows, resource=resource, fmt=job.format, path=path, progress=_Progress(job.pk))
    except Exception as exc:
        connection.set_schema_to_public()
        path.unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job.pk).update(
            state=ExportState.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        record_operation(
            actor=_job_actor(job),
            action=f"export.{job.kind}.failed",
            obj=job,
            reason=job.reason,
            after={"filters": job.filters, "format": job.format, "error": str(exc)[:500]},
        )
        raise
    sha = file_sha256(path)
    ExportJob.objects.filter(pk=job.pk).update(
        state=ExportState.DONE,
        rows_written=count,
        file_name=f"exports/{name}",
        file_size=os.path.getsize(path),
        sha256=sha,
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    tenant_ids = job.filters.get("tenant_ids") or []
    record_operation(
        actor=_job_actor(job),
        action=f"export.{job.kind}",
        obj=job,
        reason=job.reason,
        tenant=Tenant.objects.get(pk=tenant_ids[0]) if len(tenant_ids) == 1 else None,
        after={
            "filters": job.filters,
            "format": job.format,
            "rows": count,
            "sha256": sha,
            "full_numbers": job.full_numbers,
            "file": job.file_name,
        },
    )
    return job


def request_export(
    *,
    kind: str,
    fmt: str,
    filters: dict,
    user,
    ip_address: str | None = None,
    reason: str = "",
    background: bool | None = None,
) -> ExportJob:
    """Create an ExportJob for `user`. Small exports run now; over the threshold (or when asked)
    they go to the dramatiq worker (delivery.actors.run_export_job) after commit.

    Whether numbers are unmasked is decided here, from the user's permission, never by the form.
    """
    if not user.has_perm(
        "delivery.export_send_log" if kind == ExportKind.SEND_LOG else "delivery.export_operation_records"
    ):
        raise ExportError("You may not export this.", code="permission_denied")
    if fmt not in ExportFormat.values:
        raise ExportError(f"Unknown format {fmt!r}", code="invalid_format")
    if kind == ExportKind.SEND_LOG:
        filters = _recipient_filter_for(user, dict(filters or {}))
        filters = SendLogFilters.from_dict(filters).to_dict()
    estimated = estimate_rows(kind=kind, filters=filters)
    if fmt == ExportFormat.XLSX and estimated >= XLSX_MAX_ROWS:
        raise ExportError(
            f"{estimated:,} rows do not fit in one XLSX sheet ({XLSX_MAX_ROWS - 1:,} at most): "
            "choose CSV or JSON, or narrow the filters.",
            code="too_many_rows_for_xlsx",
        )
    if background is None:
        background = estimated > settings.AUDIT_EXPORT_BACKGROUND_ROWS
    job = ExportJob.objects.create(
        kind=kind,
        format=fmt,
        filters=filters,
        requested_by=user,
        requested_by_label=f"user:{user.get_username()}",
        ip_address=ip_address,
        reason=reason,
        background=background,
        estimated_rows=estimated,
        full_numbers=user.has_perm("delivery.view_full_number"),
    )
    if background:
        # By name: a service never imports the actors module (smsplatform.jobs).
        transaction.on_commit(lambda: enqueue("run_export_job", job.pk, queue="audit"))
        return job
    return produce_export(job_id=job.pk)


def _recipient_filter_for(user, filters: dict) -> dict:
    """R-AUD-2: a user who sees masked numbers may filter by a whole E.164 number only."""
    recipient = (filters.get("recipient") or "").strip()
    filters["recipient_exact"] = False
    if recipient and not user.has_perm("delivery.view_full_number"):
        if not re.fullmatch(r"\+\d{8,15}", recipient):
            raise ExportError(
                "Without permission to see full numbers, filter by a whole number in E.164 form (+8613812341234).",
                code="recipient_filter_needs_full_number",
            )
        filters["recipient_exact"] = True
    return filters


def open_export_file(job: ExportJob) -> io.BufferedReader:
    if job.state != ExportState.DONE or not job.file_name:
        raise ExportError("This export has no file yet.", code="not_ready")
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / job.file_name).resolve()
    if root not in path.parents:
        raise ExportError("Bad export path.", code="invalid_path")
    return open(path, "rb")  # noqa: SIM115 - the response closes it


def record_inline_export(
    *,
    user,
    ip_address: str | None,
    kind: str,
    fmt: str,
    filters: dict,
    rows: int,
    sha256: str,
    size: int,
    reason: str = "",
) -> ExportJob:
    """Record an export produced in the request (django-import-export's admin export) (R-AUD-2/3)."""
    now = timezone.now()
    job = ExportJob.objects.create(
        kind=kind,
        format=fmt if fmt in ExportFormat.values else ExportFormat.CSV,
        filters=filters,
        state=ExportState.DONE,
        requested_by=user,
        requested_by_label=f"user:{user.get_username()}",
        ip_address=ip_address,
        reason=reason,
        estimated_rows=rows,
        rows_written=rows,
        file_size=size,
        sha256=sha256,
        started_at=now,
        finished_at=now,
    )
    record_operation(
        actor=Actor.for_user(user, ip_address=ip_address),
        action=f"export.{kind}",
        obj=job,
        after={"filters": filters, "format": fmt, "rows": rows, "sha256": sha256, "inline": True},
    )
    return job


# --- how an export reads to a person (issue 14) ------------------------------------------------


def describe_filters(*, kind: str, filters: dict) -> str:
    """Stored filters as a sentence in the platform's zone; `date_to` (stored exclusive, the day
    after) is shown as the inclusive day the auditor chose."""
    filters = filters or {}
    zone = timezone.get_default_timezone()
    parts = []
    ids = filters.get("tenant_ids") or []
    if ids:
        names = dict(Tenant.objects.filter(pk__in=ids).values_list("pk", "name"))
        parts.append("tenants: " + ", ".join(names.get(pk, f"#{pk} (deleted)") for pk in ids))
    else:
        parts.append("every tenant")
    start = as_datetime(filters.get("date_from"))
    end = as_datetime(filters.get("date_to"))
    if start or end:
        first = f"{timezone.localtime(start):%Y-%m-%d}" if start else "the beginning"
        if end:
            local_end = timezone.localtime(end)
            whole_day = local_end.time() == time.min
            last = f"{(local_end - timedelta(days=1)) if whole_day else local_end:%Y-%m-%d}"
        else:
            last = "now"
        parts.append(f"from {first} to {last} inclusive ({zone.key})")
    else:
        parts.append("any date")
    if filters.get("statuses"):
        parts.append("status " + " or ".join(filters["statuses"]))
    for key, label in (("recipient", "recipient"), ("signature", "signature"), ("template", "template")):
        if filters.get(key):
            parts.append(f"{label} {filters[key]}")
    if filters.get("action"):
        parts.append(f"action {filters['action']}")
    return " · ".join(parts)


def send_log_span(*, tenant_ids: Iterable[int] = ()) -> tuple[datetime, datetime] | None:
    """The oldest and newest message of these tenants (created_at index: two cheap reads each)."""
    spans = []
    for tenant in customer_tenants(tenant_ids):
        with schema_context(tenant.schema_name):
            first = Message.objects.order_by("created_at").values_list("created_at", flat=True).first()
            last = Message.objects.order_by("-created_at").values_list("created_at", flat=True).first()
        if first:
            spans.append((first, last))
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


def explain_empty_export(*, kind: str, filters: dict) -> str:
    """Why an export has no rows, in words the auditor can act on."""
    text = f"No row matched: {describe_filters(kind=kind, filters=filters)}."
    if kind != ExportKind.SEND_LOG:
        return text
    span = send_log_span(tenant_ids=(filters or {}).get("tenant_ids") or ())
    if span is None:
        return text + " The selected tenants have no messages at all."
    first, last = (timezone.localtime(t) for t in span)
    return text + f" Their send log holds messages from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}."
