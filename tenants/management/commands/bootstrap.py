"""Bring a database up to date: migrations (public, tenants, template), public tenant, roles.

With --demo (make run): also a superuser and an active demo tenant with a fresh API key,
printed once.
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from smsplatform.tenancy import ensure_template_schema, repair_migration_sequences
from tenants import services
from tenants.models import Tenant, TenantKind, TenantState

DEMO_LICENCE = "91310000DEMO00000X"


class Command(BaseCommand):
    help = "Migrate every schema, prepare the tenant template, sync roles (and demo data)."

    def add_arguments(self, parser):
        parser.add_argument("--demo", action="store_true", help="create/refresh the demo admin and tenant")

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        repair_migration_sequences()  # tenants cloned before the sequence fix (smsplatform.tenancy)
        call_command("migrate_schemas", interactive=False, verbosity=max(verbosity - 1, 0))
        ensure_template_schema(verbosity=max(verbosity - 1, 0))
        ensure_public_tenant()
        call_command("sync_roles", verbosity=verbosity)
        if options["demo"]:
            self.make_demo()

    def make_demo(self):
        actor = services.Actor.system("bootstrap")
        password = secrets.token_urlsafe(12)
        User = get_user_model()
        admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        tenant = Tenant.objects.filter(licence_number=DEMO_LICENCE).first()
        if tenant is None:
            tenant = services.register_tenant(
                name="Demo Trading Co., Ltd.",
                licence_number=DEMO_LICENCE,
                contact_name="Li Lei",
                contact_phone="+8613800138000",
                contact_email="demo@example.com",
                actor=actor,
                schema_name="demo",
                activate=True,
            )
        with transaction.atomic():
            for key in tenant.api_keys.filter(revoked_at__isnull=True, label="demo"):
                services.revoke_api_key(key=key, actor=actor, reason="make run issues a fresh demo key")
            key, secret = services.issue_api_key(tenant=tenant, actor=actor, label="demo")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "  Admin:    http://127.0.0.1:8000/admin/   user admin   password " + password,
                    f"  Tenant:   {tenant.name} (schema {tenant.schema_name}, {tenant.state})",
                    f"  API key:  X-Access-Key-Id: {key.access_key_id}",
                    f"            X-Access-Key-Secret: {secret}",
                    "  (shown once: every `make run` issues a new admin password and demo key)",
                    "",
                ]
            )
        )


def ensure_public_tenant() -> Tenant:
    tenant, _ = Tenant.objects.get_or_create(
        schema_name="public",
        defaults={"name": "Platform", "kind": TenantKind.PLATFORM, "state": TenantState.ACTIVE},
    )
    return tenant
