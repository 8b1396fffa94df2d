"""Staff accounts for the operator roles (R-AUD-2, R-AUD-3): one function creates a person's admin
login in exactly one role group, with unmasked numbers only when asked (a per-user grant, never a
role's), and records it in the operation trail. `manage.py create_staff_user` calls it."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

from smsplatform.errors import DomainError
from smsplatform.roles import ROLES

from .services import Actor, record_operation


class StaffUserError(DomainError):
    code = "staff_user_refused"


def create_staff_user(
    *, username: str, role: str, actor: Actor, email: str = "", full_numbers: bool = False, password: str = ""
) -> tuple[User, str]:
    """A staff user in `role`; returns it and its password (generated when none is given, shown once)."""
    if role not in ROLES:
        raise StaffUserError(f"Unknown role {role!r}: one of {', '.join(ROLES)}.")
    if not username.strip():
        raise StaffUserError("A username is required.")
    if User.objects.filter(username=username).exists():
        raise StaffUserError(f"User {username} exists already.")
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise StaffUserError("The role groups do not exist yet: run `manage.py sync_roles` (or bootstrap).")
    password = password or secrets.token_urlsafe(12)
    with transaction.atomic():
        user = User.objects.create_user(username, email=email, password=password, is_staff=True)
        user.groups.add(group)
        if full_numbers:
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label="delivery", codename="view_full_number")
            )
        record_operation(
            actor=actor,
            action="staff.create_user",
            obj=user,
            after={"username": username, "role": role, "email": email, "full_numbers": full_numbers},
        )
    return user, password
