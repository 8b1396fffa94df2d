"""Create the operator role groups and give them exactly the permissions the apps declare.

The roles are declared in smsplatform.roles; each app lists its grants in `<app>/roles.py` as
ROLE_PERMISSIONS = {role: ["app.codename", ...]}.
"""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

from smsplatform import roles


class Command(BaseCommand):
    help = "Create/refresh the role groups: " + ", ".join(roles.ROLES) + "."

    def handle(self, *args, **options):
        try:
            grants = roles.collect_role_permissions()
        except roles.UnknownRole as exc:
            raise CommandError(str(exc)) from exc
        for role, perms in grants.items():
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
