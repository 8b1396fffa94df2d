"""Bulk writes for the delivery hot path (intake, relay, claims, results, receipts)."""

from __future__ import annotations

from smsplatform.db import insert_rows, update_rows


def insert_status_events(events: list) -> int:
    """The moves `transition(save=False)` returned (statuses.Move; None: no event), in one INSERT."""
    from .models import StatusEvent

    rows = [(e.message_id, e.from_status, e.to_status, e.at, e.detail) for e in events if e is not None]
    insert_rows(StatusEvent, ["message", "from_status", "to_status", "at", "detail"], rows)
    return len(rows)


def update_grouped(model, rows: list, fields: list[str]) -> None:
    """Each row's `fields` (attribute names) written as they are on it. Rows sharing their new
    values (a job's messages all become `submitted` at the same instant) get one
    `UPDATE … WHERE pk = ANY(…)`; when they differ (receipts' done times), all go in one
    statement (smsplatform.db.update_rows), never one per value tuple. Django's bulk_update
    builds a CASE WHEN per row and field, whose compilation was the largest cost of recording
    submit results and receipts in the end-to-end profile."""
    groups: dict[str, tuple[tuple, list[int]]] = {}
    for row in rows:
        values = tuple(getattr(row, f) for f in fields)
        groups.setdefault(repr(values), (values, []))[1].append(row.pk)  # repr: lists (JSON) are unhashable
    if len(groups) > 1:
        update_rows(model, fields, [(pk, *values) for values, ids in groups.values() for pk in ids])
        return
    for values, ids in groups.values():
        model.objects.filter(pk__any=ids).update(**dict(zip(fields, values, strict=True)))
