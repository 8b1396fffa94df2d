"""Reads of tenants used across apps (conventions.md: selectors.py for reads)."""

from __future__ import annotations

from collections.abc import Iterable

from django_tenants.utils import get_public_schema_name

from .models import Tenant, TenantKind


def customer_tenants(tenant_ids: Iterable[int] = ()) -> list[Tenant]:
    """The tenants whose schemas hold send logs (every customer, or the chosen ones), by id."""
    qs = Tenant.objects.exclude(schema_name=get_public_schema_name()).exclude(kind=TenantKind.PLATFORM)
    # R-TEN-8: a terminated tenant's schema is dropped once its retention ends: nothing to read.
    qs = qs.exclude(after_termination__deleted_at__isnull=False)
    tenant_ids = list(tenant_ids)
    if tenant_ids:
        qs = qs.filter(pk__in=tenant_ids)
    return list(qs.order_by("pk"))
