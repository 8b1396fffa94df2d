"""The send log across tenant schemas and its auditor exports (R-AUD-1, R-AUD-2).

- `iter_send_log` walks the selected tenants' schemas and yields one dict per message, in
  keyset-paginated chunks (bounded memory whatever the size), with the message's carrier ids and
  status history attached.
- `SendLogResource` (django-import-export) names the exported columns; recipient numbers are
  masked (138****1234) unless the export was made by a user with `tenants.view_full_number`.
- `write_export` streams rows to CSV, XLSX (openpyxl write-only) or JSON; CSV/XLSX cells that
  start with = + - @ tab or CR get a leading single quote (formula-injection neutralising).
- `run_export_job` fills an ExportJob: file under MEDIA_ROOT/exports, row count, SHA-256, progress,
  and the operation-trail entry (R-AUD-3).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Func, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_tenants.utils import get_public_schema_name, schema_context
from import_export import resources
from import_export.fields import Field

from smsplatform.errors import DomainError
from tenants.models import (
    ExportFormat,
    ExportJob,
    ExportKind,
    ExportState,
    OperationRecord,
    Tenant,
    TenantKind,
)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_576  # one sheet, header included


class ExportError(DomainError):
    code = "export_error"


# --- cell hygiene ---------------------------------------------------------------------------


def neutralise(value: Any) -> Any:
    """R-AUD-2: a text cell that a spreadsheet would read as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def mask_number(number: str | None) -> str:
    """R-AUD-2: 13812341234 → 138****1234, +8613812341234 → +86138****1234 (last 4 kept)."""
    if not number:
        return ""
    if number.startswith("~"):  # already an erasure hash (R-AUD-4)
        return number
    if len(number) >= 9:
        return number[: len(number) - 8] + "****" + number[-4:]
    if len(number) > 4:
        return number[:2] + "*" * (len(number) - 4) + number[-2:]
    return "*" * len(number)


_PLAIN = frozenset({str, int})
_FORMULA_FIRST = frozenset(FORMULA_PREFIXES)


def render_cell(value: Any) -> Any:
    """One export value: text for dates (ISO 8601, UTC as stored) and structures, ints stay ints,
    None is empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def neutralise_row(values: list[Any]) -> list[Any]:
    """neutralise() over a row, in one pass (the export's hot loop)."""
    return ["'" + v if v.__class__ is str and v[:1] in _FORMULA_FIRST else v for v in values]


# --- filters --------------------------------------------------------------------------------


def _as_datetime(value: Any, *, end: bool = False) -> datetime | None:
    """A date (whole day, inclusive) or datetime from a form, the API or stored JSON."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value + timedelta(days=1) if end else value, time.min)
    else:
        text = str(value).strip()
        day = parse_date(text) if len(text) == 10 else None  # a bare date is a whole day
        parsed = datetime.combine(day + timedelta(days=1) if end else day, time.min) if day else parse_datetime(text)
        if parsed is None:
            raise ExportError(f"Not a date: {value!r}", code="invalid_filter")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


@dataclass(frozen=True)
class SendLogFilters:
    """What an auditor asked for. Dates: `date_from` inclusive, `date_to` exclusive (a bare date
    in `date_to` means the end of that day)."""

    tenant_ids: tuple[int, ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    statuses: tuple[str, ...] = ()
    recipient: str = ""
    signature: str = ""
    template: str = ""
    # R-AUD-2: without view_full_number only a whole number matches (an ends-with filter over a
    # masked export would be an oracle for the hidden digits).
    recipient_exact: bool = False

    @classmethod
    def build(
        cls,
        *,
        tenant_ids: Iterable[int] = (),
        date_from: Any = None,
        date_to: Any = None,
        statuses: Iterable[str] = (),
        recipient: str = "",
        signature: str = "",
        template: str = "",
        recipient_exact: bool = False,
    ) -> SendLogFilters:
        return cls(
            tenant_ids=tuple(sorted(int(pk) for pk in tenant_ids)),
            date_from=_as_datetime(date_from),
            date_to=_as_datetime(date_to, end=True),
            statuses=tuple(statuses),
            recipient=(recipient or "").strip(),
            signature=(signature or "").strip(),
            template=(template or "").strip(),
            recipient_exact=bool(recipient_exact),
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tenant_ids"] = list(self.tenant_ids)
        data["statuses"] = list(self.statuses)
        for key in ("date_from", "date_to"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SendLogFilters:
        return cls.build(**{k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__})


def customer_tenants(tenant_ids: Iterable[int] = ()) -> list[Tenant]:
    """The tenants whose schemas hold send logs (every customer, or the chosen ones)."""
    qs = Tenant.objects.exclude(schema_name=get_public_schema_name()).exclude(kind=TenantKind.PLATFORM)
    # R-TEN-8: a terminated tenant's schema is dropped once its retention ends: nothing to read.
    qs = qs.exclude(after_termination__deleted_at__isnull=False)
    tenant_ids = list(tenant_ids)
    if tenant_ids:
        qs = qs.filter(pk__in=tenant_ids)
    return list(qs.order_by("pk"))


def message_queryset(*, filters: SendLogFilters):
    """The filtered Message rows of the CURRENT schema (call inside a tenant's schema)."""
    from delivery.models import Message

    qs = Message.objects.all()
    if filters.date_from:
        qs = qs.filter(created_at__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(created_at__lt=filters.date_to)
    if filters.statuses:
        qs = qs.filter(status__in=filters.statuses)
    if filters.recipient and filters.recipient_exact:
        qs = qs.filter(recipient=filters.recipient)
    elif filters.recipient:
        # "13812341234" finds "+8613812341234" too.
        qs = qs.filter(recipient__endswith=filters.recipient)
    if filters.signature:
        qs = qs.filter(signature=filters.signature.strip("【】[]"))
    if filters.template:
        qs = qs.filter(template=filters.template)
    return qs


def count_send_log(*, filters: SendLogFilters) -> int:
    total = 0
    for tenant in customer_tenants(filters.tenant_ids):
        with schema_context(tenant.schema_name):
            total += message_queryset(filters=filters).count()
    return total


ISO_UTC = '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\''


class IsoText(Func):
    """A timestamp as ISO 8601 text in UTC, made by PostgreSQL (cheaper than datetimes in Python)."""

    template = f"to_char(%(expressions)s AT TIME ZONE 'UTC', {ISO_UTC})"
    output_field = TextField()


# What the send log keeps of a message (R-AUD-1); times are ISO 8601 UTC text.
PLAIN_COLUMNS = (
    "id",
    "client_ref",
    "recipient",
    "country",
    "carrier",
    "signature",
    "signature_id",
    "template",
    "template_id",
    "template_version",
    "message_type",
    "content",
    "segments",
    "unit_price",
    "amount",
    "status",
    "channel_id",
    "error_code",
    "reason",
)
TIME_COLUMNS = ("created_at", "status_at", "submitted_at", "done_at")
CARRIER_IDS_SQL = (
    "(SELECT string_agg(p.carrier_message_id, ';' ORDER BY p.part) FROM delivery_messagepart p "
    "WHERE p.message_id = delivery_message.id)"
)
PART_ERRORS_SQL = (
    "(SELECT string_agg(p.part || ':' || p.err, ';' ORDER BY p.part) FROM delivery_messagepart p "
    "WHERE p.message_id = delivery_message.id AND p.err NOT IN ('', '000'))"
)
HISTORY_SQL = (
    f"(SELECT string_agg(e.to_status || '@' || to_char(e.at AT TIME ZONE 'UTC', {ISO_UTC}), ' > ' "
    "ORDER BY e.at, e.id) FROM delivery_statusevent e WHERE e.message_id = delivery_message.id)"
)


def _send_log_values(qs):
    annotations = {f"{name}_iso": IsoText(name) for name in TIME_COLUMNS}
    annotations.update(
        params_json=Cast("params", TextField()),
        # Constant SQL, no user input (S611 is about interpolated input).
        carrier_message_ids=RawSQL(CARRIER_IDS_SQL, ()),  # noqa: S611
        part_errors=RawSQL(PART_ERRORS_SQL, ()),  # noqa: S611
        status_history=RawSQL(HISTORY_SQL, ()),  # noqa: S611
    )
    names = (*PLAIN_COLUMNS, *annotations)
    keys = (*PLAIN_COLUMNS, *TIME_COLUMNS, "params", "carrier_message_ids", "part_errors", "status_history")
    return qs.annotate(**annotations).values_list(*names), keys


def iter_send_log(*, filters: SendLogFilters, chunk_size: int | None = None) -> Iterator[dict]:
    """Yield the filtered send log of every selected tenant, one dict per message.

    Keyset pagination (id > last ORDER BY id LIMIT chunk) per schema: memory holds one chunk,
    whatever the total. One query per chunk; PostgreSQL joins in each message's carrier ids,
    receipt errors and status history (correlated subqueries on the message_id indexes) and
    formats the times.
    """
    chunk_size = chunk_size or settings.AUDIT_EXPORT_CHUNK_ROWS
    for tenant in customer_tenants(filters.tenant_ids):
        with schema_context(tenant.schema_name):
            base, keys = _send_log_values(message_queryset(filters=filters).order_by("id"))
            last_id = 0
            while True:
                rows = list(base.filter(id__gt=last_id)[:chunk_size])
                if not rows:
                    break
                last_id = rows[-1][0]
                for row in rows:
                    item = dict(zip(keys, row, strict=True))
                    item["tenant"] = tenant.name
                    item["schema"] = tenant.schema_name
                    item["receipt_error"] = item["error_code"] or item["part_errors"] or ""
                    yield item
                if len(rows) < chunk_size:
                    break
    connection.set_schema_to_public()


# --- resources ------------------------------------------------------------------------------


class StreamingResource(resources.Resource):
    """A Resource whose rows can be produced fast, one at a time, for streaming writers.

    django-import-export's export() builds a tablib Dataset in memory; for big exports we take the
    same declared fields (and dehydrate_<field> methods) and apply them row by row instead.
    """

    def _specs(self) -> list[tuple[Callable[[Any], Any] | None, str]]:
        if getattr(self, "_cached_specs", None) is None:
            specs = []
            for fld in self.get_export_fields():
                name = self.get_field_name(fld)
                specs.append((getattr(self, f"dehydrate_{name}", None), fld.attribute or name))
            self._cached_specs = specs
        return self._cached_specs

    def row_values(self, row: Any) -> list[Any]:
        """The row's export values (dehydrate_<field> where declared), rendered; rows are dicts
        (streaming) or objects."""
        specs = self._specs()
        if row.__class__ is dict:
            values = [method(row) if method else row.get(attr) for method, attr in specs]
        else:
            values = [method(row) if method else getattr(row, attr, None) for method, attr in specs]
        return [v if v.__class__ in _PLAIN else render_cell(v) for v in values]

    def headers(self) -> list[str]:
        return self.get_export_headers()

    def export_field(self, field, instance, **kwargs):
        # The admin's export path (tablib) gets neutralised cells too.
        return neutralise(super().export_field(field, instance, **kwargs))


def _field(name: str, column: str | None = None) -> Field:
    return Field(attribute=name, column_name=column or name)


class SendLogResource(StreamingResource):
    """The send-log columns (R-AUD-1): everything a message keeps, one row per message."""

    tenant = _field("tenant")
    schema = _field("schema")
    id = _field("id", "message_id")
    created_at = _field("created_at")
    client_ref = _field("client_ref")
    recipient = _field("recipient")
    country = _field("country")
    carrier = _field("carrier")
    message_type = _field("message_type", "type")
    signature = _field("signature")
    signature_id = _field("signature_id")
    template = _field("template")
    template_id = _field("template_id")
    template_version = _field("template_version")
    content = _field("content")
    params = _field("params")
    segments = _field("segments")
    unit_price = _field("unit_price", "unit_price_micro")
    amount = _field("amount", "amount_micro")
    status = _field("status")
    status_at = _field("status_at")
    status_history = _field("status_history")
    channel_id = _field("channel_id")
    carrier_message_ids = _field("carrier_message_ids")
    submitted_at = _field("submitted_at")
    done_at = _field("done_at")
    receipt_error = _field("receipt_error")
    reason = _field("reason")

    class Meta:
        export_order = (
            "tenant",
            "schema",
            "id",
            "created_at",
            "client_ref",
            "recipient",
            "country",
            "carrier",
            "message_type",
            "signature",
            "signature_id",
            "template",
            "template_id",
            "template_version",
            "content",
            "params",
            "segments",
            "unit_price",
            "amount",
            "status",
            "status_at",
            "status_history",
            "channel_id",
            "carrier_message_ids",
            "submitted_at",
            "done_at",
            "receipt_error",
            "reason",
        )

    def __init__(self, *, full_numbers: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.full_numbers = full_numbers

    def dehydrate_recipient(self, row) -> str:
        number = row["recipient"] if isinstance(row, dict) else row.recipient
        return number if self.full_numbers else mask_number(number)


class OperationRecordResource(StreamingResource, resources.ModelResource):
    """The operation trail (R-AUD-3), for auditors. Same neutralising as the send log."""

    tenant = Field(attribute="tenant_id", column_name="tenant_id")

    class Meta:
        model = OperationRecord
        fields = (
            "id",
            "created_at",
            "actor_kind",
            "actor_id",
            "actor_label",
            "ip_address",
            "tenant",
            "action",
            "object_type",
            "object_id",
            "reason",
            "before",
            "after",
        )
        export_order = fields

    def __init__(self, *, full_numbers: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.full_numbers = full_numbers

    # Readable in every export (issue 14): Chinese as written, not \u escapes; times with their zone.
    def dehydrate_created_at(self, row) -> str:
        value = row["created_at"] if isinstance(row, dict) else row.created_at
        return timezone.localtime(value).isoformat() if value else ""

    def dehydrate_before(self, row) -> str:
        value = row["before"] if isinstance(row, dict) else row.before
        return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def dehydrate_after(self, row) -> str:
        value = row["after"] if isinstance(row, dict) else row.after
        return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def row_values(self, row: Any) -> list[Any]:
        # R-AUD-2: numbers in the trail (reason, before/after) masked unless view_full_number.
        values = super().row_values(row)
        if self.full_numbers:
            return values
        from smsplatform.masking import mask_value

        return [mask_value(value) for value in values]


OPERATION_RECORD_COLUMNS = (
    "id",
    "created_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "ip_address",
    "tenant_id",
    "action",
    "object_type",
    "object_id",
    "reason",
    "before",
    "after",
)


def operation_record_queryset(*, filters: dict):
    qs = OperationRecord.objects.all()
    bounds = SendLogFilters.build(date_from=filters.get("date_from"), date_to=filters.get("date_to"))
    if bounds.date_from:
        qs = qs.filter(created_at__gte=bounds.date_from)
    if bounds.date_to:
        qs = qs.filter(created_at__lt=bounds.date_to)
    if filters.get("tenant_ids"):
        qs = qs.filter(tenant_id__in=filters["tenant_ids"])
    if filters.get("action"):
        qs = qs.filter(action=filters["action"])
    return qs


def iter_operation_records(*, filters: dict, chunk_size: int | None = None) -> Iterator[dict]:
    chunk_size = chunk_size or settings.AUDIT_EXPORT_CHUNK_ROWS
    base = operation_record_queryset(filters=filters)
    last_id = 0
    while True:
        rows = list(base.filter(id__gt=last_id).order_by("id").values_list(*OPERATION_RECORD_COLUMNS)[:chunk_size])
        for row in rows:
            yield dict(zip(OPERATION_RECORD_COLUMNS, row, strict=True))
        if len(rows) < chunk_size:
            return
        last_id = rows[-1][0]


# --- writers --------------------------------------------------------------------------------

_XLSX_ILLEGAL = None


def _xlsx_safe(value: Any) -> Any:
    global _XLSX_ILLEGAL
    if _XLSX_ILLEGAL is None:
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        _XLSX_ILLEGAL = ILLEGAL_CHARACTERS_RE
    if isinstance(value, str):
        return _XLSX_ILLEGAL.sub("\ufffd", value)
    return value


# XLSX cells are typed (issue 14): times are real dates in the platform's zone (named in the
# header), and text a spreadsheet would read as a formula is stored as a text cell with Excel's
# quote-prefix style, so it never runs and shows no apostrophe. CSV keeps the leading quote
# (a CSV cell has no type).
XLSX_TIME_COLUMNS = frozenset({"created_at", "status_at", "submitted_at", "done_at"})


def _xlsx_cell(sheet, value: Any, *, is_time: bool) -> Any:
    from openpyxl.cell import WriteOnlyCell

    if is_time and value:
        moment = value if isinstance(value, datetime) else parse_datetime(str(value))
        if moment is not None:
            cell = WriteOnlyCell(sheet, value=timezone.localtime(moment).replace(tzinfo=None))
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
            return cell
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        cell = WriteOnlyCell(sheet, value=_xlsx_safe(value))
        cell.data_type = "s"
        cell.quotePrefix = True
        return cell
    return _xlsx_safe(value)


def write_export(
    *,
    rows: Iterable[Any],
    resource: StreamingResource,
    fmt: str,
    path: Path,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> int:
    """Stream rows into `path` in the chosen format; returns the row count."""
    headers = resource.headers()
    count = 0

    def tick():
        if progress is not None and count % progress_every == 0:
            progress(count)

    if fmt == ExportFormat.CSV:
        with open(path, "w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(headers)
            for row in rows:
                writer.writerow(neutralise_row(resource.row_values(row)))
                count += 1
                tick()
    elif fmt == ExportFormat.XLSX:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("export")
        zone = timezone.get_default_timezone()
        times = frozenset(i for i, name in enumerate(headers) if name in XLSX_TIME_COLUMNS)
        sheet.append([f"{name} ({zone.key})" if i in times else name for i, name in enumerate(headers)])
        for row in rows:
            sheet.append([_xlsx_cell(sheet, v, is_time=i in times) for i, v in enumerate(resource.row_values(row))])
            count += 1
            tick()
        workbook.save(path)
    elif fmt == ExportFormat.JSON:
        with open(path, "w", encoding="utf-8") as out:
            out.write("[")
            for row in rows:
                out.write(",\n" if count else "\n")
                out.write(json.dumps(dict(zip(headers, resource.row_values(row), strict=True)), ensure_ascii=False))
                count += 1
                tick()
            out.write("\n]\n")
    else:
        raise ExportError(f"Unknown format {fmt!r}", code="invalid_format")
    return count


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def _job_actor(job: ExportJob):
    from tenants.services import Actor

    return Actor(
        kind="user" if job.requested_by_id else "system",
        id=str(job.requested_by_id or ""),
        label=job.requested_by_label,
        ip_address=job.ip_address,
    )


def run_export_job(*, job_id: int) -> ExportJob:
    """Produce the job's file (R-AUD-2) and record it (R-AUD-3). Idempotent for finished jobs."""
    from tenants.services import record_operation

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
    they go to the dramatiq worker (tenants.actors.run_export) after commit.

    Whether numbers are unmasked is decided here, from the user's permission, never by the form.
    """
    from django.db import transaction

    if not user.has_perm(
        "tenants.export_send_log" if kind == ExportKind.SEND_LOG else "tenants.export_operation_records"
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
        full_numbers=user.has_perm("tenants.view_full_number"),
    )
    if background:
        from tenants.actors import run_export

        transaction.on_commit(lambda: run_export.send(job.pk))
        return job
    return run_export_job(job_id=job.pk)


def _recipient_filter_for(user, filters: dict) -> dict:
    """R-AUD-2: a user who sees masked numbers may filter by a whole E.164 number only."""
    import re

    recipient = (filters.get("recipient") or "").strip()
    filters["recipient_exact"] = False
    if recipient and not user.has_perm("tenants.view_full_number"):
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
    from tenants.services import Actor, record_operation

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
    start = _as_datetime(filters.get("date_from"))
    end = _as_datetime(filters.get("date_to"))
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
    from delivery.models import Message

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
