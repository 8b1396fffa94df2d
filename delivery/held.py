"""Cancelling messages not yet submitted, and the reviewers' queue of held messages (R-CMP-3/8):
release or reject, with the money held for them released (R-BIL-2).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .callbacks import enqueue_status_callback, enqueue_status_callbacks
from .charges import release_messages_holds
from .errors import DeliveryError, MessageNotFound, NotCancellable
from .models import Message, MessageStatus, OutboxEntry
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
    from tenants.selectors import customer_tenants

    found = []
    for tenant in customer_tenants(tenant_ids):
        with tenant_context(tenant):
            rows = list(Message.objects.filter(status=S.HELD).order_by("created_at", "pk")[:limit_per_tenant])
        if rows:
            found.append((tenant, rows))
    return found


def release_stale_held_messages(*, now: datetime | None = None, tenant_ids: list[int] | None = None) -> int:
    """Money held for a message waiting for review is not held forever: a message nobody reviewed
    within BILLING_HELD_REVIEW_TIMEOUT_HOURS (default 72) is cancelled with a reason and its hold
    released. Each tenant in its own transaction; rows locked and re-checked, so a reviewer's
    concurrent decision wins and nothing is released twice. Returns how many were cancelled.
    (R-BIL-2; run by billing's periodic job: it lives here, beside the review queue, because it
    moves messages — billing never imports delivery.)"""
    from tenants.selectors import customer_tenants

    now = now or timezone.now()
    hours = getattr(settings, "BILLING_HELD_REVIEW_TIMEOUT_HOURS", 72)
    cutoff = now - timedelta(hours=hours)
    actor = Actor.system("billing.held_timeout")
    total = 0
    for tenant in customer_tenants(tenant_ids or ()):
        with tenant_context(tenant), transaction.atomic():
            messages = list(
                Message.objects.select_for_update(skip_locked=True)
                .filter(status=S.HELD, status_at__lt=cutoff)
                .order_by("pk")
            )
            if not messages:
                continue
            detail = f"not reviewed within {hours} h: cancelled, held funds released"
            for m in messages:
                transition(message=m, to_status=S.CANCELLED, at=now, detail=detail, reason="review_timeout")
            release_messages_holds(messages=messages, key_prefix="heldtimeout", reason="review timeout")
            record_operation(
                actor=actor,
                action="billing.held_review_timeout",
                tenant=tenant,
                reason=detail,
                after={"messages": [m.pk for m in messages]},
            )
            enqueue_status_callbacks(tenant=tenant, messages=messages)
            total += len(messages)
    return total
