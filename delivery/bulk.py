"""Bulk INSERTs for the delivery hot path (claims, submit results, receipts), issue 7.

`bulk_create` compiles every row and field into its own parameter, and psycopg then quotes each
one into the statement text: in the worker profile that was the largest Python cost of a job's
bookkeeping. Here one statement takes one array per column — ``INSERT … SELECT * FROM
unnest(%s::type[], …)`` — the same rows, no per-row model compilation. Only for plain columns
(no Python-side defaults left out: every NOT NULL column is passed). Tenant tables resolve
through the current search_path like the ORM's."""

from __future__ import annotations

from django.db import connection


def insert_rows(model, fields: list[str], rows: list[tuple], *, on_conflict: str = "") -> int:
    """INSERT `rows` (tuples in `fields` order) into `model`'s table in one statement.
    `on_conflict`: SQL appended as is (e.g. "ON CONFLICT DO NOTHING")."""
    if not rows:
        return 0
    quote = connection.ops.quote_name
    columns, casts = [], []
    for name in fields:
        field = model._meta.get_field(name)
        columns.append(quote(field.column))
        casts.append(f"%s::{field.db_type(connection)}[]")
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 - names from the model
        f"SELECT * FROM unnest({', '.join(casts)}) {on_conflict}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(values) for values in zip(*rows, strict=True)])
    return len(rows)


def insert_status_events(events: list) -> int:
    """The StatusEvents `transition(save=False)` returned (None: no event), in one INSERT."""
    from .models import StatusEvent

    return insert_rows(
        StatusEvent, ["message", "from_status", "to_status", "at", "detail"],
        [(e.message_id, e.from_status, e.to_status, e.at, e.detail) for e in events if e is not None],
    )
