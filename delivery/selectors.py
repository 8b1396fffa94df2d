"""Read paths for the API and the admin (call inside the caller's tenant schema for messages)."""

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from .models import InboundMessage, Maintenance, Message, SendRequest


def messages_for_caller() -> QuerySet[Message]:
    """Messages of the schema the connection is in (the API request's tenant)."""
    return Message.objects.order_by("-pk")


def message_detail(*, message_id: int) -> Message | None:
    return Message.objects.filter(pk=message_id).prefetch_related("events", "parts").first()


def send_request_detail(*, request_id: int) -> SendRequest | None:
    return SendRequest.objects.filter(pk=request_id).first()


def replies_for_caller() -> QuerySet[InboundMessage]:
    return InboundMessage.objects.order_by("-received_at", "-pk")


def maintenance_notices(*, now: datetime | None = None) -> QuerySet[Maintenance]:
    """Current and upcoming maintenance (R-DLV-6); channel names only, never their accounts."""
    now = now or timezone.now()
    return (
        Maintenance.objects.filter(cancelled_at__isnull=True, ends_at__gt=now)
        .select_related("channel")
        .order_by("starts_at")
    )


def delivery_backlog(*, now: datetime | None = None) -> dict[str, int]:
    """Public-schema work waiting longer than it should, for /readyz and monitoring.

    Counts only (no tenant data): each query hits a partial index, so probes stay cheap.
    """
    from datetime import timedelta

    from .models import CallbackDelivery, CallbackState, Channel, OutboxEntry, PendingReceipt

    now = now or timezone.now()
    return {
        # The sweeper relays every 5 s: a due entry a minute old means relaying is stuck.
        "outbox_overdue": OutboxEntry.objects.filter(
            relayed_at__isnull=True, available_at__lt=now - timedelta(seconds=60)
        ).count(),
        "receipts_parked": PendingReceipt.objects.filter(applied_at__isnull=True).count(),
        "callbacks_failed": CallbackDelivery.objects.filter(state=CallbackState.FAILED).count(),
        "channels_enabled": Channel.objects.filter(enabled=True).count(),
        "channels_down": Channel.objects.filter(enabled=True, down_until__gt=now).count(),
    }
