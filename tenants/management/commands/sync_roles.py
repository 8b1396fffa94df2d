"""Create the operator role groups and give them exactly the permissions the apps declare.

Each app lists its grants in `<app>/roles.py` as ROLE_PERMISSIONS = {role: ["app.codename", ...]}.
"""

from importlib import import_module

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

ROLES = ("operator", "reviewer", "finance", "auditor")


def collect_role_permissions() -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {role: set() for role in ROLES}
    for config in apps.get_app_configs():
        try:
            module = import_module(f"{config.name}.roles")
        except ModuleNotFoundError:
            continue
        for role, perms in module.ROLE_PERMISSIONS.items():
            grants[role].update(perms)
    return grants


class Command(BaseCommand):
    help = "Create/refresh the role groups: operator, reviewer, finance, auditor."

    def handle(self, *args, **options):
        for role, perms in collect_role_permissions().items():
            group, _ = Group.objects.get_or_create(name=role)
            found = []
            for perm in sorted(perms):
                app_label, codename = perm.split(".", 1)
                try:
                    found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
                except Permission.DoesNotExist as exc:
                    raise CommandError(f"Unknown permission {perm} for role {role}") from exc
            group.permissions.set(found)
            if options["verbosity"] > 1:
                self.stdout.write(f"{role}: {len(found)} permissions")
