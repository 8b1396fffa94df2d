"""Places each model in the public or the tenant schemas.

django-tenants decides per app; our apps hold both platform records (public) and tenant PII
(tenant schema), so an app listed in both SHARED_APPS and TENANT_APPS is split per model by its
`schema_scope` (smsplatform.tenancy.TenantScoped marks tenant-schema models). A table that exists
in only one place means a query in the wrong context fails loudly instead of reading an empty copy.
"""

from django.apps import apps
from django.conf import settings
from django.db import connections
from django_tenants.routers import TenantSyncRouter
from django_tenants.utils import get_public_schema_name


def schema_scope_of(app_label: str, model_name: str) -> str | None:
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        return None
    owner = model._meta.auto_created or model  # m2m through tables follow their owner
    return getattr(owner, "schema_scope", "public")


class SchemaScopeRouter(TenantSyncRouter):
    def allow_migrate(self, db, app_label, model_name=None, **hints):
        allowed = super().allow_migrate(db, app_label, model_name, **hints)
        if allowed is False or model_name is None:
            return allowed
        if app_label not in {a.rsplit(".", 1)[-1] for a in settings.TENANT_APPS} or app_label not in {
            a.rsplit(".", 1)[-1] for a in settings.SHARED_APPS
        }:
            return allowed
        scope = schema_scope_of(app_label, model_name)
        if scope is None:
            return allowed
        in_public = connections[db].schema_name == get_public_schema_name()
        return scope == ("public" if in_public else "tenant")
