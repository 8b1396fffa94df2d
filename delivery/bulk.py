"""Bulk writes for the delivery hot path (intake, relay, claims, results, receipts)."""

from __future__ import annotations

from smsplatform.db import insert_rows


def insert_status_events(events: list) -> int:
    """The moves `transition(save=False)` returned (statuses.Move; None: no event), in one INSERT."""
    from .models import StatusEvent

    rows = [(e.message_id, e.from_status, e.to_status, e.at, e.detail) for e in events if e is not None]
    insert_rows(StatusEvent, ["message", "from_status", "to_status", "at", "detail"], rows)
    return len(rows)


def update_grouped(model, rows: list, fields: list[str]) -> None:
    """Rows sharing the same new values get one UPDATE (receipts mostly do: same status, same
    second); cheaper than one bulk_update CASE over every row."""
    groups: dict[tuple, list[int]] = {}
    for row in rows:
        groups.setdefault(tuple(getattr(row, f) for f in fields), []).append(row.pk)
    for values, ids in groups.items():
        model.objects.filter(pk__any=ids).update(**dict(zip(fields, values, strict=True)))
