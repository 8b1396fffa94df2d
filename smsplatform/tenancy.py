"""Tenant-schema helpers.

To run code in a tenant's schema use django_tenants.utils.tenant_context(tenant) (it restores
the previous schema afterwards); workers reset to public after every job (reset_to_public).
"""

import re

from django.db import connection


class TenantScoped:
    """Mixin for models whose rows live in each tenant's own schema (tenant PII).

    Everything else lives in the public schema. See smsplatform.routers and docs/architecture.md.
    """

    schema_scope = "tenant"


def reset_to_public() -> None:
    connection.set_schema_to_public()


def ensure_template_schema(verbosity: int = 0) -> None:
    """Create/migrate the schema new tenants are cloned from (settings.TENANT_BASE_SCHEMA).

    migrate_schemas only walks tenant rows, so the template is migrated here explicitly; run it
    after every migration (manage.py bootstrap does).
    """
    from django.conf import settings
    from django.core.management import call_command

    schema = settings.TENANT_BASE_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    call_command("migrate_schemas", schema_name=schema, interactive=False, verbosity=verbosity)
    reset_to_public()


def clone_template_schema(new_schema: str) -> None:
    """Create `new_schema` as a structural copy of the template schema, in a few statements.

    django-tenants' clone_schema() (a large PL/pgSQL routine) took ~1 s for an almost empty
    template on our 2-core machines, and grows with every table. We copy exactly what
    migrations produced instead: tables (columns, defaults, identity columns with their own new
    sequences), then every constraint and index under its original name (so later migrations
    that drop them by name still work), triggers, and the django_migrations rows. Measured in
    bench/bench_tenants.py.
    """
    from django.conf import settings

    template = settings.TENANT_BASE_SCHEMA
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        # Introspect with only the template on the path, so definitions come out unqualified
        # for template objects and schema-qualified for anything else (public tables).
        cursor.execute(f"SET LOCAL search_path TO {qn(template)}")
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname",
            [template],
        )
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT cl.relname, con.conname, pg_get_constraintdef(con.oid), con.contype "
            "FROM pg_constraint con JOIN pg_class cl ON cl.oid = con.conrelid "
            "JOIN pg_namespace n ON n.oid = cl.relnamespace "
            "WHERE n.nspname = %s AND con.contype IN ('p', 'u', 'c', 'x', 'f') "
            "ORDER BY CASE con.contype WHEN 'f' THEN 1 ELSE 0 END, cl.relname, con.conname",
            [template],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class cl ON cl.oid = i.indrelid JOIN pg_namespace n ON n.oid = cl.relnamespace "
            "WHERE n.nspname = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)",
            [template],
        )
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class cl ON cl.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE n.nspname = %s AND NOT t.tgisinternal",
            [template],
        )
        triggers = [row[0] for row in cursor.fetchall()]

        statements = [f"CREATE SCHEMA {qn(new_schema)}", f"SET LOCAL search_path TO {qn(new_schema)}, public"]
        statements += [
            f"CREATE TABLE {qn(table)} (LIKE {qn(template)}.{qn(table)} "
            "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS)"
            for table in tables
        ]
        statements += [
            f"ALTER TABLE {qn(table)} ADD CONSTRAINT {qn(name)} {definition}"
            for table, name, definition, _ in constraints
        ]
        # Index and trigger definitions always name the table's schema: point them at the clone.
        on_template = re.compile(rf" ON (ONLY )?(?:{re.escape(qn(template))}|{re.escape(template)})\.")
        statements += [on_template.sub(lambda m: f" ON {m.group(1) or ''}", sql, count=1) for sql in indexes + triggers]
        statements.append(f"INSERT INTO django_migrations SELECT * FROM {qn(template)}.django_migrations")
        # The rows came with their ids but the clone's identity sequence starts at 1: move it past
        # them, or the next migration applied to this tenant fails on django_migrations_pkey.
        statements.append(
            "SELECT setval(pg_get_serial_sequence('django_migrations', 'id'), "
            "(SELECT COALESCE(MAX(id), 0) + 1 FROM django_migrations), false)"
        )
        cursor.execute(";\n".join(statements))
        cursor.execute("SET LOCAL search_path TO public")
    reset_to_public()


def repair_migration_sequences() -> None:
    """Move every schema's django_migrations id sequence past its rows.

    Schemas cloned before the fix in clone_template_schema copied the template's rows with a fresh
    sequence at 1, so the next migration failed on django_migrations_pkey; bootstrap runs this
    before migrating (cheap and idempotent)."""
    with connection.cursor() as cursor:
        cursor.execute("""
            DO $$
            DECLARE s text;
            BEGIN
              FOR s IN SELECT table_schema FROM information_schema.tables WHERE table_name = 'django_migrations' LOOP
                EXECUTE format(
                  'SELECT setval(pg_get_serial_sequence(%L, ''id''), '
                  '(SELECT COALESCE(MAX(id), 0) + 1 FROM %I.django_migrations), false)',
                  quote_ident(s) || '.django_migrations', s);
              END LOOP;
            END $$;
        """)
