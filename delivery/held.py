"""Cancelling messages not yet submitted, and the reviewers' queue of held messages (R-CMP-3/8):
release or reject, with the money held for them released (R-BIL-2).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .charges import release_messages_holds
from .errors import DeliveryError, MessageNotFound, NotCancellable
from .models import Message, MessageStatus, OutboxEntry
from .services import enqueue_status_callback, enqueue_status_callbacks
from .statuses import transition

S = MessageStatus


CANCELLABLE = frozenset({S.ACCEPTED, S.SCHEDULED, S.HELD, S.QUEUED})


def cancel_message(*, tenant: Tenant, message_id: int, actor: Actor) -> Message:
    """Cancel a message not yet submitted and release its hold (R-DLV-1, R-BIL-2)."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            raise MessageNotFound()
        if message.status not in CANCELLABLE:
            raise NotCancellable(details={"status": message.status})
        before = message.status
        transition(message=message, to_status=S.CANCELLED, detail="cancelled by customer")
        release_messages_holds(messages=[message], key_prefix="cancel", reason="cancelled")
        record_operation(
            actor=actor,
            action="delivery.cancel",
            tenant=tenant,
            obj=message,
            before={"status": before},
            after={"status": S.CANCELLED},
        )
        enqueue_status_callback(tenant=tenant, message=message)
    return message


def release_held_messages(*, tenant: Tenant, message_ids: list[int], actor: Actor) -> int:
    """A reviewer lets held messages go (R-CMP-3/8 hold → send): they are queued via the outbox."""
    with transaction.atomic(), tenant_context(tenant):
        messages = list(Message.objects.select_for_update().filter(pk__in=message_ids, status=S.HELD))
        now = timezone.now()
        for m in messages:
            transition(
                message=m, to_status=S.SCHEDULED if m.send_at and m.send_at > now else S.ACCEPTED, detail="released"
            )
        ids = [m.pk for m in messages]
        if ids:
            OutboxEntry.objects.create(
                tenant=tenant,
                request_id=messages[0].request_id,
                message_ids=ids,
                available_at=min(m.send_at or now for m in messages),
            )
            record_operation(actor=actor, action="delivery.release_held", tenant=tenant, after={"messages": ids})
    return len(ids)


def reject_held_messages(*, tenant: Tenant, message_ids: list[int], actor: Actor, reason: str) -> int:
    """A reviewer refuses held messages (R-CMP-3/8 hold → rejected): final `rejected`, the money
    held for them released through billing (R-BIL-2), the tenant's callbacks sent. Messages no
    longer held are skipped, so a second click rejects nothing twice."""
    if not reason.strip():
        raise DeliveryError("A reason is required to reject held messages.", code="reason_required")
    with transaction.atomic(), tenant_context(tenant):
        messages = list(Message.objects.select_for_update().filter(pk__in=message_ids, status=S.HELD).order_by("pk"))
        for m in messages:
            transition(
                message=m, to_status=S.REJECTED, detail=f"rejected by reviewer: {reason}", reason="rejected_by_reviewer"
            )
        ids = [m.pk for m in messages]
        if ids:
            release_messages_holds(messages=messages, key_prefix="heldreject", reason="rejected by reviewer")
            record_operation(
                actor=actor, action="delivery.reject_held", tenant=tenant, reason=reason, after={"messages": ids}
            )
            enqueue_status_callbacks(tenant=tenant, messages=messages)
    return len(ids)


def held_messages(*, tenant_ids: Iterable[int] = (), limit_per_tenant: int = 200) -> list[tuple[Tenant, list[Message]]]:
    """Held messages across tenants, oldest first, for the reviewers' page. They live in each
    tenant's schema: one query per customer tenant (as the send-log export walks them)."""
    from .sendlog import customer_tenants

    found = []
    for tenant in customer_tenants(tenant_ids):
        with tenant_context(tenant):
            rows = list(Message.objects.filter(status=S.HELD).order_by("created_at", "pk")[:limit_per_tenant])
        if rows:
            found.append((tenant, rows))
    return found
