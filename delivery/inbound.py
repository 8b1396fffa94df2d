"""R-DLV-4 receipts and R-DLV-5 replies (deliver_sm), whichever bind they arrive on.

Receipts find their message through the public carrier-id lookup; one that arrives before the
submit response was recorded is parked in PendingReceipt and applied when the lookup row
appears. Each part of a long message has its own receipt; a message is `delivered` only when
every part is delivered, otherwise it takes the worst part's outcome
(rejected > undelivered > expired > unknown). Applying the same receipt twice changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Tenant

from . import services
from .models import (
    CarrierMessageId,
    Channel,
    InboundMessage,
    Message,
    MessagePart,
    MessageStatus,
    PendingReceipt,
    TenantNumber,
)
from .routing import normalise_number

log = logging.getLogger(__name__)
S = MessageStatus
RECEIPT_FINAL = (S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.UNKNOWN)
WORST_FIRST = (S.REJECTED, S.UNDELIVERED, S.EXPIRED, S.UNKNOWN)


def handle_inbound(*, channel_id: int | None, pdu) -> None:
    if pdu.is_receipt and pdu.receipt is not None:
        record_receipt(
            channel_id=channel_id, receipt=pdu.receipt, source_addr=pdu.source_addr, destination_addr=pdu.destination_addr
        )
    else:
        receive_reply(channel_id=channel_id, source=pdu.source_addr, destination=pdu.destination_addr, text=pdu.text)


def _variants(message_id: str) -> list[str]:
    from . import receipts

    variants = getattr(receipts, "message_id_variants", None)
    found = list(variants(message_id)) if variants else []
    normalised = receipts.normalise_message_id(message_id)
    return list(dict.fromkeys([normalised, message_id, *found]))


def _lookup(*, channel_id: int | None, carrier_message_id: str) -> CarrierMessageId | None:
    rows = CarrierMessageId.objects.filter(carrier_message_id__in=_variants(carrier_message_id)).select_related("tenant")
    if channel_id is not None:
        rows = rows.filter(channel_id=channel_id)
    return rows.first()


def record_receipt(*, channel_id: int | None, receipt, source_addr: str = "", destination_addr: str = "") -> bool:
    """Apply a receipt, or park it until its carrier id is known. True when applied now."""
    status = str(receipt.status)
    status = {"failed": S.UNDELIVERED}.get(status, status)  # e.g. DELETED: the carrier gave up
    if status not in RECEIPT_FINAL:
        log.info("intermediate receipt %s (%s) ignored", receipt.message_id, receipt.stat)
        return False
    row = _lookup(channel_id=channel_id, carrier_message_id=receipt.message_id)
    if row is None:
        PendingReceipt.objects.create(
            channel_id=channel_id, carrier_message_id=receipt.message_id, stat=receipt.stat, status=status,
            err=str(receipt.err or "")[:10], done_at=receipt.done_date, source_addr=source_addr[:32],
            destination_addr=destination_addr[:32],
        )
        # The lookup row may have been committed between our read and the insert: try again.
        apply_pending_receipts(carrier_ids=[receipt.message_id])
        return False
    apply_receipt(
        tenant=row.tenant, message_id=row.message_id, part=row.part, status=status, stat=receipt.stat,
        err=str(receipt.err or ""), done_at=receipt.done_date,
    )
    return True


def apply_receipt(
    *, tenant: Tenant, message_id: int, part: int, status: str, stat: str = "", err: str = "", done_at: datetime | None = None
) -> str | None:
    """Record one part's outcome; move the message when every part has one. Idempotent."""
    done_at = done_at or timezone.now()
    with tenant_context(tenant), transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return None
        parts = {p.part: p for p in MessagePart.objects.select_for_update().filter(message=message)}
        row = parts.get(part)
        if row is None or row.status in RECEIPT_FINAL:
            return None  # unknown part, or a duplicate receipt: no effect
        row.status, row.stat, row.err, row.done_at = status, stat[:10], err[:10], done_at
        row.save(update_fields=["status", "stat", "err", "done_at"])
        expected = row.parts
        if len(parts) < expected or any(p.status not in RECEIPT_FINAL for p in parts.values()):
            return None
        outcomes = [p.status for p in parts.values()]
        final = S.DELIVERED if all(o == S.DELIVERED for o in outcomes) else next(o for o in WORST_FIRST if o in outcomes)
        if message.status == final or not services.can_transition(message.status, final):
            return None
        failing = next((p for p in parts.values() if p.status != S.DELIVERED), None)
        services.transition(
            message=message, to_status=final, detail=f"receipt {stat}",
            done_at=max(p.done_at for p in parts.values() if p.done_at), error_code=(failing.err if failing else "")[:20],
        )
        services.enqueue_status_callback(tenant=tenant, message=message)
    return final


def apply_pending_receipts(*, carrier_ids: list[str] | None = None, limit: int = 1000) -> int:
    """Apply parked receipts whose carrier id is now known (after a submit was recorded, and
    periodically)."""
    applied = 0
    with transaction.atomic():
        pending = PendingReceipt.objects.select_for_update(skip_locked=True).filter(applied_at__isnull=True)
        if carrier_ids is not None:
            wanted = {v for cid in carrier_ids for v in _variants(cid)}
            pending = pending.filter(carrier_message_id__in=wanted)
        rows = list(pending.order_by("received_at")[:limit])
        for receipt in rows:
            row = _lookup(channel_id=receipt.channel_id, carrier_message_id=receipt.carrier_message_id)
            if row is None:
                continue
            apply_receipt(
                tenant=row.tenant, message_id=row.message_id, part=row.part, status=receipt.status, stat=receipt.stat,
                err=receipt.err, done_at=receipt.done_at,
            )
            receipt.applied_at = timezone.now()
            receipt.save(update_fields=["applied_at"])
            applied += 1
    return applied


# --- replies (R-DLV-5) --------------------------------------------------------------------------


def tenant_for_destination(*, channel_id: int | None, destination: str) -> Tenant | None:
    """The tenant whose extension follows the channel's source address in the MO destination."""
    rest = destination
    if channel_id is not None:
        source = Channel.objects.filter(pk=channel_id).values_list("source_addr", flat=True).first() or ""
        if source and destination.startswith(source):
            rest = destination[len(source) :]
    candidates = [rest[:i] for i in range(len(rest), 0, -1)]
    if not candidates:
        return None
    numbers = {n.extension: n for n in TenantNumber.objects.filter(extension__in=candidates).select_related("tenant")}
    for candidate in candidates:  # longest extension first
        if candidate in numbers:
            return numbers[candidate].tenant
    return None


def receive_reply(*, channel_id: int | None, source: str, destination: str, text: str) -> InboundMessage | None:
    """Store a reply in its tenant's schema, act on opt-out keywords at once (R-CMP-4), call back."""
    from compliance.services import apply_inbound_keyword

    tenant = tenant_for_destination(channel_id=channel_id, destination=destination)
    if tenant is None:
        log.warning("reply to %s on channel %s matches no tenant number; dropped", destination, channel_id)
        return None
    number = normalise_number(source) or normalise_number("+" + source.lstrip("+")) or source
    now = timezone.now()
    with tenant_context(tenant), transaction.atomic():
        action = apply_inbound_keyword(tenant=tenant, number=number, text=text)
        reply = InboundMessage.objects.create(
            source=number, destination=destination, text=text, keyword_action=action or "", channel_id=channel_id,
            received_at=now,
        )
        services.enqueue_callback(
            tenant=tenant, url="", event="reply",
            payload={"event": "reply", "id": reply.pk, "from": number, "to": destination, "text": text,
                     "keyword_action": action, "received_at": now.isoformat()},
        )
    return reply
