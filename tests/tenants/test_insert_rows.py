"""smsplatform.db.insert_rows, the bulk INSERT of the intake hot path: rows land in the current
tenant's schema and the model's table (R-TEN-1), defaults are filled like the ORM's, values are
checked by the columns (no silent truncation), one statement whatever the row count."""

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from delivery.models import InboundMessage
from smsplatform.db import insert_rows
from tenants.models import OperationRecord

COLUMNS = ("source", "destination", "text", "received_at")


def replies(n: int, prefix: str = "+86138") -> list[tuple]:
    now = timezone.now()
    return [(f"{prefix}{i:08d}", "10690", f"reply {i} é", now) for i in range(n)]


def test_rows_land_in_the_current_tenant_schema_only_R_TEN_1(tenant_a, tenant_b):
    with tenant_context(tenant_b):
        before_b = InboundMessage.objects.count()
    with tenant_context(tenant_a):
        before_a = InboundMessage.objects.count()
        ids = insert_rows(InboundMessage, COLUMNS, replies(3), returning="id")
        stored = list(InboundMessage.objects.filter(pk__in=ids).order_by("pk"))
        assert InboundMessage.objects.count() == before_a + 3
    with tenant_context(tenant_b):
        assert InboundMessage.objects.count() == before_b
    assert [m.text for m in stored] == ["reply 0 é", "reply 1 é", "reply 2 é"]
    assert [(m.keyword_action, m.channel_id) for m in stored] == [("", None)] * 3  # model defaults filled


def test_returning_gives_each_row_its_id_in_row_order(tenant_a):
    rows = replies(50, prefix="+86139")
    with tenant_context(tenant_a):
        ids = insert_rows(InboundMessage, COLUMNS, rows, returning="id")
        by_id = dict(InboundMessage.objects.filter(pk__in=ids).values_list("pk", "source"))
    assert [by_id[i] for i in ids] == [row[0] for row in rows]


def test_a_value_too_long_for_its_column_is_refused_not_truncated(tenant_a):
    too_long = ("+" + "1" * 40, "10690", "x", timezone.now())  # source is varchar(32)
    with tenant_context(tenant_a), pytest.raises(DataError), transaction.atomic():
        insert_rows(InboundMessage, COLUMNS, [too_long])


def test_json_values_and_auto_now_add_like_the_orm(db):
    insert_rows(
        OperationRecord,
        ("actor_kind", "actor_label", "action", "before", "after"),
        [("system", "insert-rows-test", "test.insert_rows", None, {"a": [1, "é", None], "b": {"c": True}})],
    )
    record = OperationRecord.objects.get(action="test.insert_rows")
    assert record.before is None  # a Python None is SQL NULL, not JSON null
    assert OperationRecord.objects.filter(action="test.insert_rows", before__isnull=True).exists()
    assert record.after == {"a": [1, "é", None], "b": {"c": True}}
    assert abs((timezone.now() - record.created_at).total_seconds()) < 60


def test_one_statement_for_any_number_of_rows(tenant_a):
    with tenant_context(tenant_a):
        with CaptureQueriesContext(connection) as small:
            insert_rows(InboundMessage, COLUMNS, replies(2, prefix="+86137"))
        with CaptureQueriesContext(connection) as large:
            insert_rows(InboundMessage, COLUMNS, replies(1000, prefix="+86136"))

    def statements(ctx):  # the search_path is set once per schema switch (TENANT_LIMIT_SET_CALLS)
        return [q for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")]

    assert len(statements(large)) == len(statements(small)) == 1
    assert insert_rows(InboundMessage, COLUMNS, []) == []


def test_any_lookup_matches_like_an_in_list_with_one_array_parameter(tenant_a):
    """`field__any=[…]` (smsplatform.db.AnyOf, the send path's id lists, issue 16): the rows of
    an IN list, in one array parameter whatever the number of values (psycopg re-parses a
    statement of more than 50 parameters each time), for text, ids and an empty list; usable in
    an UPDATE."""
    with tenant_context(tenant_a):
        insert_rows(InboundMessage, COLUMNS, replies(5, prefix="+86134"))
        wanted = ["+8613400000001", "+8613400000003", "+8613499999999"]
        found = set(InboundMessage.objects.filter(source__any=wanted).values_list("source", flat=True))
        assert found == set(InboundMessage.objects.filter(source__in=wanted).values_list("source", flat=True))
        assert found == {"+8613400000001", "+8613400000003"}
        ids = list(InboundMessage.objects.filter(source__in=wanted).values_list("pk", flat=True))
        many = ids + list(range(10**9, 10**9 + 300))  # a hot-path sized list, mostly no rows
        with CaptureQueriesContext(connection) as ctx:
            assert set(InboundMessage.objects.filter(pk__any=many).values_list("pk", flat=True)) == set(ids)
        assert "= ANY(" in ctx.captured_queries[-1]["sql"]
        assert InboundMessage.objects.filter(pk__any=[]).count() == 0
        odd = ['a "quoted" \\ text', "{brace},comma", "NULL", "短信 ,"]  # array-literal syntax in values
        insert_rows(InboundMessage, COLUMNS, [(v, "10690", "odd", timezone.now()) for v in odd])
        assert sorted(InboundMessage.objects.filter(source__any=odd).values_list("source", flat=True)) == sorted(odd)
        assert not InboundMessage.objects.filter(source__any=['a "quoted"', "NULL "]).exists()
        # a value longer than the column is not cut to it (varchar(32): its prefix is stored)
        full = "+86134" + "7" * 26
        insert_rows(InboundMessage, COLUMNS, [(full, "10690", "full width", timezone.now())])
        assert InboundMessage.objects.filter(source__any=[full]).exists()
        assert not InboundMessage.objects.filter(source__any=[full + "0"]).exists()
        assert InboundMessage.objects.filter(pk__any=set(ids)).update(keyword_action="stop") == 2
        assert set(InboundMessage.objects.filter(keyword_action="stop").values_list("pk", flat=True)) >= set(ids)


def test_load_only_gives_the_instances_only_would(tenant_a):
    """smsplatform.db.load_only (the send path's claimed and result rows, issue 16): the same
    instances as `.only()` — values, deferred fields, saving, loading a deferred field — built
    without Django's per-row construction; a model with init signal receivers the usual way."""
    from django.db.models.signals import post_init

    from smsplatform.db import load_only

    fields = ("id", "source", "received_at", "channel_id")
    with tenant_context(tenant_a):
        insert_rows(InboundMessage, COLUMNS, replies(4, prefix="+86133"))
        query = InboundMessage.objects.filter(source__startswith="+86133").order_by("pk")
        usual = list(query.only(*fields))
        fast = load_only(query, fields)
        assert [type(m) for m in fast] == [InboundMessage] * 4
        assert [(m.pk, m.source, m.received_at, m.channel_id) for m in fast] == [
            (m.pk, m.source, m.received_at, m.channel_id) for m in usual
        ]
        assert fast[0].get_deferred_fields() == usual[0].get_deferred_fields()
        assert "text" in fast[0].get_deferred_fields()
        assert not fast[0]._state.adding
        assert fast[0].text == "reply 0 é"  # a deferred field loads on access
        fast[1].keyword_action = "stop"
        fast[1].save(update_fields=["keyword_action"])
        assert InboundMessage.objects.get(pk=fast[1].pk).keyword_action == "stop"
        assert InboundMessage.objects.get(pk=fast[1].pk).text == "reply 1 é"  # nothing else written
        with pytest.raises(ValueError, match="needs 'id'"):
            load_only(query, ("source",))  # without the primary key

        seen = []

        def receiver(sender, instance, **kwargs):
            seen.append(instance)

        post_init.connect(receiver, sender=InboundMessage)
        try:
            assert [m.pk for m in load_only(query, fields)] == [m.pk for m in usual]
        finally:
            post_init.disconnect(receiver, sender=InboundMessage)
        assert len(seen) == 4  # its receiver saw every instance


def test_update_rows_writes_each_row_its_own_values_in_one_statement(tenant_a):
    """smsplatform.db.update_rows (receipts whose done times differ, issue 16): one UPDATE for
    any number of rows, each to its own values (text, time, NULL, JSON), in the current tenant's
    schema; a value too long for its column is refused, nothing written."""
    from smsplatform.db import update_rows

    with tenant_context(tenant_a):
        ids = insert_rows(InboundMessage, COLUMNS, replies(3, prefix="+86132"), returning="id")
        other = insert_rows(InboundMessage, COLUMNS, replies(1, prefix="+86131"), returning="id")
        at = [timezone.now() - timezone.timedelta(seconds=s) for s in (1, 2, 3)]
        rows = [(pk, f"action {i}", at[i], None if i == 1 else 7) for i, pk in enumerate(ids)]
        with CaptureQueriesContext(connection) as ctx:
            update_rows(InboundMessage, ["keyword_action", "received_at", "channel_id"], rows)
        assert len(ctx.captured_queries) == 1
        got = InboundMessage.objects.filter(pk__in=ids).order_by("pk")
        assert [(m.keyword_action, m.received_at, m.channel_id) for m in got] == [r[1:] for r in rows]
        assert InboundMessage.objects.get(pk=other[0]).keyword_action == ""  # only the rows given
        with pytest.raises(DataError), transaction.atomic():
            update_rows(InboundMessage, ["keyword_action"], [(ids[0], "new"), (ids[1], "x" * 21)])
        assert InboundMessage.objects.get(pk=ids[0]).keyword_action == "action 0"
