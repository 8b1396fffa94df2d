"""The operation trail (R-AUD-3) as an export: its columns, its filtered queryset, its rows in
keyset chunks. Written to a file by delivery.sendlog.jobs, or by the trail admin's Export button.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.utils import timezone
from import_export import resources
from import_export.fields import Field

from tenants.models import OperationRecord

from .export import SendLogFilters, StreamingResource


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
