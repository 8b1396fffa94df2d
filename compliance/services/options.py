"""Per-tenant compliance settings (consent policy, caps, countries, rectification deadline)."""

from __future__ import annotations

import logging
from datetime import datetime, time

from django.db import transaction

from tenants.models import Tenant
from tenants.services import Actor, record_operation

from ..models import (
    ComplianceSettings,
    ConsentPolicy,
)
from ._base import ComplianceError

logger = logging.getLogger(__name__)


# --- settings --------------------------------------------------------------------------------


def settings_for(*, tenant: Tenant) -> ComplianceSettings:
    """The tenant's compliance settings (an unsaved default row when none was set)."""
    found = ComplianceSettings.objects.filter(tenant_id=tenant.pk).first()
    return found or ComplianceSettings(tenant_id=tenant.pk)


SETTINGS_FIELDS = (
    "consent_policy",
    "per_minute_cap",
    "per_day_cap",
    "spike_multiple",
    "enabled_countries",
    "rectification_deadline",
)


def update_compliance_settings(*, tenant: Tenant, changes: dict, actor: Actor, reason: str = "") -> ComplianceSettings:
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ComplianceError(f"Not compliance settings: {', '.join(sorted(unknown))}.", code="invalid_field")
    if "enabled_countries" in changes:
        changes["enabled_countries"] = sorted({str(c).upper() for c in changes["enabled_countries"]})
    if "consent_policy" in changes and changes["consent_policy"] not in ConsentPolicy.values:
        raise ComplianceError("Unknown consent policy.", code="invalid_field")
    with transaction.atomic():
        row, _ = ComplianceSettings.objects.select_for_update().get_or_create(tenant=tenant)
        before = {field: _jsonable(getattr(row, field)) for field in changes}
        if "rectification_deadline" in changes and changes["rectification_deadline"] != row.rectification_deadline:
            # A new deadline starts a new rectification: not done, not escalated (R-CMP-6).
            row.rectification_done_at, row.rectification_done_by, row.rectification_escalated_at = None, "", None
        for field, value in changes.items():
            setattr(row, field, value)
        row.save()
        record_operation(
            actor=actor,
            action="compliance_settings.update",
            tenant=tenant,
            obj=row,
            reason=reason,
            before=before,
            after={field: _jsonable(value) for field, value in changes.items()},
        )
    return row


def _jsonable(value):
    return value.isoformat() if isinstance(value, datetime | time) else value
