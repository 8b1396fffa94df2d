"""Issue 16: a message row is written four times on its way (insert, routed, claimed, result) and,
its status being indexed, no write is a HOT update: every index of the table takes an entry each
time; the other tables written per message or part (holds, receipts, carrier-id lookups, recent
recipients, parts, status events) take one per row. So these tables carry no index another one
already serves (none whose columns lead another index) and no LIKE-pattern (varchar_pattern_ops)
copy, which nothing queries with."""

import pytest
from django.db import connection

#: written for every message or part on the send path: (schema, table); None = the tenant's
HOT_TABLES = [
    (None, "delivery_message"),
    (None, "delivery_messagepart"),
    (None, "delivery_statusevent"),
    ("public", "billing_hold"),
    ("public", "delivery_pendingreceipt"),
    ("public", "delivery_carriermessageid"),
    ("public", "delivery_recentrecipient"),
]


def index_columns(schema: str, table: str) -> dict[str, tuple[list[str], str]]:
    """{index name: (its columns in order, its definition)} of `schema`.`table`."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT i.relname, array_agg(a.attname ORDER BY k.ord), pg_get_indexdef(i.oid)
               FROM pg_index x
               JOIN pg_class t ON t.oid = x.indrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
               JOIN pg_class i ON i.oid = x.indexrelid
               CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
               WHERE n.nspname = %s AND t.relname = %s AND x.indpred IS NULL
               GROUP BY i.relname, i.oid""",
            [schema, table],
        )
        return {name: (list(columns), definition) for name, columns, definition in cursor.fetchall()}


@pytest.mark.parametrize(("schema", "table"), HOT_TABLES)
def test_hot_tables_have_no_redundant_index(tenant_a, schema, table):
    schema = schema or tenant_a.schema_name
    indexes = index_columns(schema, table)
    assert indexes, f"{table} not found in {schema}"
    for name, (columns, definition) in indexes.items():
        assert "pattern_ops" not in definition, f"{name}: a LIKE-pattern copy ({definition})"
        if "UNIQUE" in definition:
            continue  # a constraint, not only a lookup path
        for other, (other_columns, other_definition) in indexes.items():
            if "pattern_ops" in other_definition:
                continue  # reported as such above
            assert other == name or other_columns[: len(columns)] != columns, (
                f"{name} {columns} is served by {other} {other_columns}"
            )
