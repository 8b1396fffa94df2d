"""Bulk INSERT for hot paths (API intake): rows as plain tuples, no model instances.

Django's bulk_create compiles every value of every row through its field (pre_save,
get_db_prep_save, adaptation) and psycopg then dumps one array per column: for 1000 messages
that was about half the time of a batch request (bench/results/api_profile.txt). Here the rows
travel as ONE JSON document that PostgreSQL unpacks (`jsonb_array_elements`) and casts to the
column types, so the Python side is a single C-speed `json.dumps`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import lru_cache

from django.db import connection, models
from django.db.models.base import ModelState
from django.utils import timezone
from django_tenants.utils import tenant_context


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"insert_rows cannot send {type(value).__name__} values")


def _select_expression(field: models.Field, index: int) -> str:
    if field.get_internal_type() == "JSONField":
        return f"NULLIF(r->{index}, 'null'::jsonb)"  # a Python None is SQL NULL, as in Django
    db_type = field.db_type(connection)
    # An explicit cast to varchar(n) would silently truncate; cast to varchar and let the
    # column's own assignment cast refuse a value that is too long, as a normal INSERT does.
    if db_type.startswith("varchar("):
        db_type = "varchar"
    return f"(r->>{index})::{db_type}"


@lru_cache(maxsize=256)
def _insert_statement(
    model: type[models.Model], columns: tuple[str, ...], returning: str | None, on_conflict: str
) -> tuple[str, list[models.Field]]:
    """insert_sql's SQL text (the same for every call with these arguments: built once per
    process, issue 16: building it was ~3 % of a send worker's CPU for small receipt batches) and
    the fields not in `columns` that get their default per call."""
    meta = model._meta
    qn = connection.ops.quote_name
    fields = [meta.get_field(name) for name in columns]
    names = [qn(f.column) for f in fields]
    select = [_select_expression(f, i) for i, f in enumerate(fields)]
    given = {f.attname for f in fields}
    defaulted = [f for f in meta.concrete_fields if f.attname not in given and not f.primary_key]
    for field in defaulted:
        names.append(qn(field.column))
        select.append(f"%s::{field.db_type(connection)}" if field.get_internal_type() != "JSONField" else "%s")
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(names)}) "
        f"SELECT {', '.join(select)} FROM jsonb_array_elements(%s::jsonb) AS r {on_conflict}"
    )
    if returning:
        sql += f" RETURNING {qn(meta.get_field(returning).column)}"
    return sql, defaulted


def insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence],
    *,
    returning: str | None = None,
    on_conflict: str = "",
) -> list:
    """INSERT `rows` (tuples in the order of `columns`, attribute names) into `model`'s table in
    one statement; returns the `returning` column of each row, in row order, when asked.
    `on_conflict` is SQL appended as is ("ON CONFLICT DO NOTHING", "ON CONFLICT (…) DO UPDATE …").

    Concrete fields not in `columns` get their Python default (evaluated once per call) or
    `now` for auto_now / auto_now_add; the primary key is left to its sequence unless given.
    Runs through the connection's cursor, so it uses the current search_path (tenant schema)
    and the model's db_table like the ORM, and is counted by django_assert_num_queries.
    Values: str, int, bool, None, datetime (aware; or its ISO 8601 text, cheaper when every row
    shares one instant), and dict/list for JSON fields."""
    if not rows:
        return []
    sql, params = insert_sql(model, columns, rows, returning=returning, on_conflict=on_conflict)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()] if returning else []


def insert_sql(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence],
    *,
    returning: str | None = None,
    on_conflict: str = "",
) -> tuple[str, list]:
    """The statement insert_rows() runs, and its parameters, without running it."""
    sql, defaulted = _insert_statement(model, tuple(columns), returning, on_conflict)
    now = timezone.now()
    constants = [
        field.get_db_prep_save(
            now if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) else field.get_default(),
            connection,
        )
        for field in defaulted
    ]
    texts: dict = {}

    def default(value):  # the rows of a call mostly share one instant: its ISO text once
        text = texts.get(value)
        if text is None:
            text = texts[value] = _json_default(value)
        return text

    document = json.dumps(rows, default=default, ensure_ascii=False, separators=(",", ":"))
    return sql, [*constants, document]


@lru_cache(maxsize=128)
def _update_statement(model: type[models.Model], fields: tuple[str, ...]) -> str:
    meta = model._meta
    qn = connection.ops.quote_name
    targets = [meta.get_field(name) for name in fields]
    sets = ", ".join(f"{qn(f.column)} = {_select_expression(f, i + 1)}" for i, f in enumerate(targets))
    pk = meta.pk
    return (
        f"UPDATE {qn(meta.db_table)} AS t SET {sets} FROM jsonb_array_elements(%s::jsonb) AS r "
        f"WHERE t.{qn(pk.column)} = (r->>0)::{pk.db_type(connection)}"
    )


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence]) -> None:
    """UPDATE many rows, each to its own values, in one statement: `rows` are tuples of the
    primary key then the values of `fields` (attribute names), sent as one JSON document as in
    insert_rows. For rows whose new values differ (receipts' done times to the second), where
    one `UPDATE … WHERE pk = ANY(…)` per distinct value tuple was a statement per message."""
    if not rows:
        return
    document = json.dumps(rows, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    with connection.cursor() as cursor:
        cursor.execute(_update_statement(model, tuple(fields)), [document])


def execute_together(statements: Sequence[tuple[str, list]]) -> None:
    """Run several INSERT/UPDATE statements (from insert_sql) as ONE statement, each a
    data-modifying CTE (issue 17: one round trip for the rows of an accepted send). They see
    one snapshot, so none may read what another writes; deferred foreign keys still hold."""
    parts, params = [], []
    for index, (sql, values) in enumerate(statements):
        parts.append(f"w{index} AS ({sql})")
        params.extend(values)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT 1", params)


class AnyOf(models.Lookup):
    """`field__any=[…]`: ``field = ANY(%s::<type>[])``, the values as ONE array parameter.

    For the hot id lists of the send path (issue 16): an `__in` list of 250 ids is compiled by
    Django value by value, and psycopg re-parses a statement of more than 50 parameters every
    time (its statement cache stops there). Unlike `IN (SELECT unnest(…))`, a semi-join the
    planner answered with scans (PostgreSQL's CPU doubled on the send path), `= ANY` keeps the
    index scan of a plain IN list. Registered on every field (smsplatform.apps)."""

    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        # the type without its modifier: a cast to varchar(n) or numeric(p, s) would cut or round
        # the values looked for, and a longer one could then match a stored prefix
        base = field.cast_db_type(connection).partition("(")[0]
        return f"{lhs} = ANY(%s::{base}[])", [
            *lhs_params,
            array_literal(field, self.rhs, connection),
        ]


def array_literal(field: models.Field, values: Iterable, connection) -> str | list:
    """`values` as PostgreSQL array text ('{1,2}', '{"a","b"}'): one string parameter is sent as
    is, where psycopg dumps a list element by element in Python (250 ids: 0.8 ms a query against
    0.4 ms). Values of other types go as a list of the field's database values."""
    values = list(values)
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(v) is str for v in values):
        quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
        return "{" + ",".join(f'"{v}"' for v in quoted) + "}"
    return [field.get_db_prep_value(v, connection, prepared=False) for v in values]


def load_only(queryset: models.QuerySet, fields: Sequence[str]) -> list:
    """`list(queryset.only(*fields))`, the instances built without Django's per-row model
    construction: Model.from_db looks every concrete field up in the loaded names and
    Model.__init__ sets each one and sends its two signals, about half of loading a send job's
    250 claimed messages (issue 16). The rows come as value tuples and fill the instances'
    __dict__ directly. The instances are ordinary: the other fields load on access (deferred),
    save(update_fields=…) and refresh_from_db work as usual. `fields` must include the primary
    key. A model with its own from_db or init signal receivers is loaded the usual way."""
    model = queryset.model
    meta = model._meta
    if (
        model.from_db.__func__ is not models.Model.from_db.__func__
        or models.signals.pre_init.has_listeners(model)
        or models.signals.post_init.has_listeners(model)
    ):
        return list(queryset.only(*fields))
    names = tuple(meta.get_field(name).attname for name in fields)
    if meta.pk.attname not in names:
        raise ValueError(f"load_only needs {meta.pk.attname!r} among the fields")
    db = queryset.db
    new = model.__new__
    loaded = []
    for row in queryset.values_list(*names):
        instance = new(model)
        state = ModelState()
        state.adding = False
        state.db = db
        values = instance.__dict__
        values["_state"] = state
        values.update(zip(names, row, strict=True))
        loaded.append(instance)
    return loaded


@contextmanager
def tenant_scope(tenant) -> Iterator[None]:
    """django-tenants' tenant_context, except that nothing happens when `tenant` is current
    already: set_tenant forgets the search_path it set, so every nested or repeated
    tenant_context of the same tenant cost a SET search_path on entry and another after its exit
    (issue 16: ~6 % of a send job's samples)."""
    if getattr(connection, "tenant", None) is not None and connection.schema_name == tenant.schema_name:
        yield
        return
    with tenant_context(tenant):
        yield
