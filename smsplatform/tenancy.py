"""Tenant-schema helpers.

To run code in a tenant's schema use django_tenants.utils.tenant_context(tenant) (it restores
the previous schema afterwards); workers reset to public after every job (reset_to_public).
"""

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
