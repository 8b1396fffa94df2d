"""The send log across tenant schemas, streamed into export files (R-AUD-1, R-AUD-2).

- `iter_send_log` walks the selected tenants' schemas and yields one dict per message, in
  keyset-paginated chunks (bounded memory whatever the size), with the message's carrier ids and
  status history attached.
- `SendLogResource` (django-import-export) names the exported columns; recipient numbers are
  masked (138****1234) unless the export was made by a user with `delivery.view_full_number`.
- `write_export` streams rows to CSV, XLSX (openpyxl write-only) or JSON; CSV/XLSX cells that
  start with = + - @ tab or CR get a leading single quote (formula-injection neutralising).

Export jobs (who asked, the file, the trail entry) are in delivery.sendlog.jobs; the operation
trail's columns in delivery.sendlog.trail.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
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
from django_tenants.utils import schema_context
from import_export import resources
from import_export.fields import Field

from delivery.models import ExportFormat, Message
from smsplatform.errors import DomainError
from smsplatform.masking import mask_number  # R-AUD-2: one rule for exports and pages
from tenants.selectors import customer_tenants

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class ExportError(DomainError):
    code = "export_error"


# --- cell hygiene ---------------------------------------------------------------------------


def neutralise(value: Any) -> Any:
    """R-AUD-2: a text cell that a spreadsheet would read as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


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


def as_datetime(value: Any, *, end: bool = False) -> datetime | None:
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
            date_from=as_datetime(date_from),
            date_to=as_datetime(date_to, end=True),
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


def message_queryset(*, filters: SendLogFilters):
    """The filtered Message rows of the CURRENT schema (call inside a tenant's schema)."""
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
