"""Channel maintenance: announced with at least one working day's notice (R-DLV-6) and
notified to the tenants it touches (R-DLV-7, tenants.duty_notices)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from tenants.duty_notices import notify_maintenance
from tenants.services import Actor, record_operation

from .calendar import earliest_maintenance_start
from .errors import InvalidMaintenanceWindow, MaintenanceNoticeTooShort
from .models import Channel, Maintenance


def schedule_maintenance(
    *, channel: Channel, starts_at: datetime, ends_at: datetime, notice: str, actor: Actor, now: datetime | None = None
) -> Maintenance:
    """Announce channel maintenance; refused with less than one working day's notice (R-DLV-6)."""
    now = now or timezone.now()
    if ends_at <= starts_at:
        raise InvalidMaintenanceWindow()
    earliest = earliest_maintenance_start(now=now)
    if starts_at < earliest:
        raise MaintenanceNoticeTooShort(details={"earliest_start": earliest.isoformat()})
    with transaction.atomic():
        item = Maintenance.objects.create(
            channel=channel, starts_at=starts_at, ends_at=ends_at, notice=notice, created_by=actor.label
        )
        record_operation(
            actor=actor,
            action="delivery.schedule_maintenance",
            obj=item,
            after={"channel": channel.pk, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
        )
        notify_maintenance(maintenance=item, now=now)  # R-DLV-6: announced to tenants (R-DLV-7)
    return item


def cancel_maintenance(*, maintenance: Maintenance, actor: Actor, reason: str = "") -> Maintenance:
    with transaction.atomic():
        if maintenance.cancelled_at is None:
            maintenance.cancelled_at = timezone.now()
            maintenance.save(update_fields=["cancelled_at"])
            record_operation(actor=actor, action="delivery.cancel_maintenance", obj=maintenance, reason=reason)
    return maintenance
