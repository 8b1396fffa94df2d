"""Channels (save, create with an encrypted password, up/down) and tenant numbers (extensions).
A tenant's delivery settings row (callbacks) is delivery/callbacks.delivery_settings_for."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from smsplatform.crypto import encrypt_secret  # the platform key (R-TEN-2)
from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .models import Channel, TenantNumber


def save_channel(*, channel: Channel, actor: Actor, changed: list[str] | None = None) -> Channel:
    with transaction.atomic():
        created = channel.pk is None
        channel.save()
        record_operation(
            actor=actor,
            action="delivery.channel_" + ("create" if created else "change"),
            obj=channel,
            after={"fields": changed or []},
        )
    return channel


def mark_channel_down(*, channel_id: int, error: str, seconds: int | None = None) -> None:
    seconds = seconds if seconds is not None else settings.DELIVERY_CHANNEL_DOWN_SECONDS
    Channel.objects.filter(pk=channel_id).update(
        down_until=timezone.now() + timedelta(seconds=seconds), last_error=error[:500]
    )


def mark_channel_up(*, channel_id: int) -> None:
    Channel.objects.filter(pk=channel_id, down_until__isnull=False).update(down_until=None)


def create_channel(*, actor: Actor, password: str, **fields) -> Channel:
    return save_channel(channel=Channel(password=encrypt_secret(password), **fields), actor=actor, changed=list(fields))


# --- tenant numbers and settings --------------------------------------------------------------


def assign_tenant_number(*, tenant: Tenant, extension: str, actor: Actor) -> TenantNumber:
    with transaction.atomic():
        number = TenantNumber.objects.create(tenant=tenant, extension=extension)
        record_operation(
            actor=actor, action="delivery.assign_number", tenant=tenant, obj=number, after={"extension": extension}
        )
    return number
