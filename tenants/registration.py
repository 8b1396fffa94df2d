"""Real-name registration: register a tenant and keep its profile current (R-TEN-1, R-TEN-3, R-TEN-6).

Above tenants.services in the layers: registering screens the account name with compliance
(tenants/qualifications.py) and a profile update fulfils the registration update duty
(tenants/registration_updates.py), so tenants' core never imports those duties.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from compliance.normalise import licence_key

from .models import Domain, Tenant, TenantKind, TenantState
from .qualifications import check_account_name
from .registration_updates import fulfil_update_duties
from .services import Actor, TenantError, change_tenant_state, record_operation


class LicenceAlreadyRegistered(TenantError):
    code = "licence_registered"
    http_status = status.HTTP_409_CONFLICT
    default_message = "This licence number is already registered."


class LicenceTerminated(TenantError):
    code = "licence_terminated"
    http_status = status.HTTP_409_CONFLICT
    default_message = "This licence number belongs to a terminated account and cannot register again."


PROFILE_FIELDS = ("name", "kind", "licence_number", "contact_name", "contact_phone", "contact_email")
CUSTOMER_EDITABLE_FIELDS = ("contact_name", "contact_phone", "contact_email")


def _check_licence_free(licence_number: str) -> None:
    # R-TEN-3: compared in the compliance normal form (width, spaces, look-alikes folded); terminated
    # numbers stored before that form existed are folded here too (few rows).
    existing = Tenant.objects.filter(licence_number=licence_number).only("state").first()
    if existing is None and any(
        licence_key(old or "") == licence_number
        for old in Tenant.objects.filter(state=TenantState.TERMINATED).values_list("licence_number", flat=True)
    ):
        raise LicenceTerminated(details={"licence_number": licence_number})
    if existing is None:
        return
    if existing.state == TenantState.TERMINATED:
        raise LicenceTerminated(details={"licence_number": licence_number})
    raise LicenceAlreadyRegistered(details={"licence_number": licence_number})


def register_tenant(
    *,
    name: str,
    licence_number: str,
    contact_name: str,
    contact_phone: str,
    contact_email: str,
    actor: Actor,
    kind: str = TenantKind.ENTERPRISE,
    schema_name: str | None = None,
    activate: bool = False,
) -> Tenant:
    """Create a tenant and its schema (cloned from the template schema: fast).

    New tenants wait in `pending` for real-name review unless `activate` (an operator who has
    reviewed the documents already) (R-TEN-1, R-TEN-3).
    """
    licence_number = licence_key(licence_number)
    _check_licence_free(licence_number)
    check_account_name(name=name, tenant=None)
    schema_name = schema_name or f"t_{secrets.token_hex(5)}"
    with transaction.atomic():
        tenant = Tenant(
            schema_name=schema_name,
            name=name,
            kind=kind,
            licence_number=licence_number,
            contact_name=contact_name,
            contact_phone=contact_phone,
            contact_email=contact_email,
            state=TenantState.PENDING,
            state_changed_at=timezone.now(),
        )
        try:
            with transaction.atomic():
                tenant.save(verbosity=0)  # creates the schema (auto_create_schema)
        except IntegrityError as exc:  # lost a race on the licence number
            raise LicenceAlreadyRegistered(details={"licence_number": licence_number}) from exc
        Domain.objects.create(domain=f"{schema_name.replace('_', '-')}.tenants.local", tenant=tenant, is_primary=True)
        record_operation(actor=actor, action="tenant.register", tenant=tenant, obj=tenant, after=_profile(tenant))
        if activate:
            change_tenant_state(tenant=tenant, to_state=TenantState.ACTIVE, actor=actor, reason="registered active")
    return tenant


def _profile(tenant: Tenant) -> dict:
    return {field: getattr(tenant, field) for field in PROFILE_FIELDS}


def update_tenant_profile(*, tenant: Tenant, changes: dict[str, Any], actor: Actor) -> Tenant:
    """Keep real-name data current (R-TEN-1); the before/after goes into the trail."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise TenantError(f"Not profile fields: {', '.join(sorted(unknown))}", code="invalid_field")
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if "licence_number" in changes:
            changes["licence_number"] = licence_key(changes["licence_number"])
            if changes["licence_number"] != tenant.licence_number:
                if tenant.state == TenantState.TERMINATED:  # R-TEN-3: the number stays taken forever
                    raise TenantError(
                        "A terminated account's licence number cannot be changed.", code="licence_terminated"
                    )
                _check_licence_free(changes["licence_number"])
        if "name" in changes and changes["name"] != tenant.name:
            check_account_name(name=changes["name"], tenant=tenant)
        before = _profile(tenant)
        for field, value in changes.items():
            setattr(tenant, field, value)
        tenant.save(update_fields=list(changes))
        record_operation(
            actor=actor,
            action="tenant.update_profile",
            tenant=tenant,
            obj=tenant,
            before=before,
            after=_profile(tenant),
        )
        # R-TEN-6: updating the real-name data fulfils an open 10-working-day update duty.
        fulfil_update_duties(tenant=tenant, actor=actor)
    return tenant
