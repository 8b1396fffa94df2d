"""Bring a database up to date: migrations (public, tenants, template), public tenant, roles.

With --demo (make run): also a superuser and an active demo tenant with an API key, kept in
var/demo-credentials.json and printed on every run.
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from smsplatform.errors import DomainError
from smsplatform.tenancy import ensure_template_schema, repair_migration_sequences
from tenants import registration, services
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
        """The demo admin and API key, kept under var/ so every `make run` prints the same ones
        (issue 14: a new password each restart locked people out with the saved one)."""
        actor = services.Actor.system("bootstrap")
        saved = _load_demo_credentials()
        User = get_user_model()
        admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        admin.is_staff = admin.is_superuser = True
        password = saved.get("admin_password") or ""
        if not password or not admin.check_password(password):
            password = secrets.token_urlsafe(12)
            admin.set_password(password)
        admin.save()
        tenant = Tenant.objects.filter(licence_number=DEMO_LICENCE).first()
        if tenant is None:
            tenant = registration.register_tenant(
                name="Demo Trading Co., Ltd.",
                licence_number=DEMO_LICENCE,
                contact_name="Li Lei",
                contact_phone="+8613800138000",
                contact_email="demo@example.com",
                actor=actor,
                schema_name="demo",
                activate=True,
            )
        key_id, secret = saved.get("access_key_id") or "", saved.get("access_key_secret") or ""
        try:
            key = services.authenticate_plain(access_key_id=key_id, secret=secret) if key_id and secret else None
        except DomainError:
            key = None  # revoked, expired or from another database: issue a new one
        if key is None or key.tenant_id != tenant.pk:
            with transaction.atomic():
                for old in tenant.api_keys.filter(revoked_at__isnull=True, label="demo"):
                    services.revoke_api_key(key=old, actor=actor, reason="make run replaces a lost demo key")
                key, secret = services.issue_api_key(tenant=tenant, actor=actor, label="demo")
        path = _save_demo_credentials(
            {"admin_password": password, "access_key_id": key.access_key_id, "access_key_secret": secret}
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "  Admin:    http://127.0.0.1:8000/admin/   user admin   password " + password,
                    f"  Tenant:   {tenant.name} (schema {tenant.schema_name}, {tenant.state})",
                    f"  API key:  X-Access-Key-Id: {key.access_key_id}",
                    f"            X-Access-Key-Secret: {secret}",
                    f"  (kept in {path}: the same on every `make run`; delete the file for new ones)",
                    "",
                ]
            )
        )


def _credentials_path():
    from smsplatform.embedded import VAR

    return VAR / "demo-credentials.json"


def _load_demo_credentials() -> dict:
    import json

    try:
        return json.loads(_credentials_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _save_demo_credentials(data: dict):
    import json
    import os

    path = _credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only this user may read it: it holds a superuser password and an API secret.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    return path


def ensure_public_tenant() -> Tenant:
    tenant, _ = Tenant.objects.get_or_create(
        schema_name="public",
        defaults={"name": "Platform", "kind": TenantKind.PLATFORM, "state": TenantState.ACTIVE},
    )
    return tenant
