"""Legal holds and evidence packages (R-AUD-5).

Records tied to violations, complaints, disputes and authority requests are kept past the send-log
purge (R-AUD-1) and recipient erasure (R-AUD-4) until the hold is released: delivery/sendlog/retention.py
asks `held_message_filter` / `held_inbound_filter` / `tenant_fully_held` and skips what they
match. From a hold (or a violation of clearly illegal content) an operator compiles an evidence
package: the messages with their carrier ids, status history and times, and the tenant's
real-name data, as one JSON file whose SHA-256 is recorded; the hand-over to the authority is
recorded once.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_tenants.utils import schema_context
from rest_framework import status

from smsplatform import numbers
from smsplatform.errors import Conflict, DomainError

from .models import EvidencePackage, HoldBasis, HoldScope, LegalHold, Tenant
from .services import Actor, record_operation


class LegalHoldError(DomainError):
    code = "legal_hold_error"
    http_status = status.HTTP_400_BAD_REQUEST


class AlreadyHandedOver(Conflict):
    code = "already_handed_over"
    default_message = "This evidence package was already handed over."


# --- holds -----------------------------------------------------------------------------------


def place_hold(
    *,
    tenant: Tenant,
    basis: str,
    reference: str,
    reason: str,
    actor: Actor,
    scope: str = HoldScope.TENANT,
    message_ids: list[int] | None = None,
    number: str = "",
    from_at: datetime | None = None,
    to_at: datetime | None = None,
) -> LegalHold:
    """Keep a tenant's records (all, listed messages, or one number's) past purge and erasure."""
    if basis not in HoldBasis.values:
        raise LegalHoldError(f"Unknown basis {basis!r}.", code="invalid_basis")
    if scope not in HoldScope.values:
        raise LegalHoldError(f"Unknown scope {scope!r}.", code="invalid_scope")
    if not reason.strip() or not reference.strip():
        raise LegalHoldError("A hold needs a reference and a reason.", code="reason_required")
    ids = sorted({int(i) for i in message_ids or []})
    if scope == HoldScope.MESSAGES and not ids:
        raise LegalHoldError("List the messages to hold.", code="messages_required")
    if scope == HoldScope.NUMBER:
        try:  # the number as an erasure request names it (lenient), so the two always match
            number = numbers.normalise_lenient(number)
        except numbers.InvalidNumber as exc:
            raise LegalHoldError(
                "Give the recipient number in E.164 form, e.g. +8613812341234.",
                code="invalid_number",
                details={"number": number},
            ) from exc
    if from_at and to_at and from_at > to_at:
        raise LegalHoldError("The time range ends before it starts.", code="invalid_range")
    with transaction.atomic():
        hold = LegalHold.objects.create(
            tenant=tenant,
            basis=basis,
            reference=reference.strip()[:200],
            scope=scope,
            message_ids=ids if scope == HoldScope.MESSAGES else [],
            number=number if scope == HoldScope.NUMBER else "",
            from_at=from_at,
            to_at=to_at,
            reason=reason,
            placed_by_label=actor.label,
        )
        record_operation(
            actor=actor,
            action="legal_hold.place",
            tenant=tenant,
            obj=hold,
            reason=reason,
            after={"basis": basis, "reference": hold.reference, "scope": scope, "messages": len(ids)},
        )
    return hold


def release_hold(*, hold: LegalHold, actor: Actor, reason: str) -> LegalHold:
    if not reason.strip():
        raise LegalHoldError("A reason is required to release a hold.", code="reason_required")
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
        if hold.released_at is None:
            hold.released_at = timezone.now()
            hold.released_by_label = actor.label
            hold.release_reason = reason
            hold.save(update_fields=["released_at", "released_by_label", "release_reason"])
            record_operation(actor=actor, action="legal_hold.release", tenant=hold.tenant, obj=hold, reason=reason)
    return hold


def active_holds(*, tenant: Tenant | int) -> QuerySet[LegalHold]:
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return LegalHold.objects.filter(tenant_id=tenant_id, released_at__isnull=True)


def tenant_fully_held(*, tenant: Tenant | int) -> bool:
    return active_holds(tenant=tenant).filter(scope=HoldScope.TENANT).exists()


def _number_variants(number: str) -> list[str]:
    return [number, number[3:]] if number.startswith("+86") else [number]


def _hold_q(hold: LegalHold, *, number_field: str, time_field: str, ids: bool) -> Q | None:
    if hold.scope == HoldScope.TENANT:
        # Not Q(): Django ignores an empty Q in exclude(), which would purge everything.
        return Q(pk__isnull=False)
    if hold.scope == HoldScope.MESSAGES:
        return Q(pk__in=hold.message_ids) if ids else None
    q = Q(**{f"{number_field}__in": _number_variants(hold.number)})
    if hold.from_at:
        q &= Q(**{f"{time_field}__gte": hold.from_at})
    if hold.to_at:
        q &= Q(**{f"{time_field}__lte": hold.to_at})
    return q


def _combined(holds, **kwargs) -> Q | None:
    combined = None
    for hold in holds:
        q = _hold_q(hold, **kwargs)
        if q is None:
            continue
        combined = q if combined is None else combined | q
    return combined


def held_message_filter(*, tenant: Tenant | int) -> Q | None:
    """A Q matching this tenant's held send-log messages, or None when nothing is held. Use it to exclude rows from a purge or an erasure."""
    return _combined(active_holds(tenant=tenant), number_field="recipient", time_field="created_at", ids=True)


def held_inbound_filter(*, tenant: Tenant | int) -> Q | None:
    """The same for replies: a tenant-wide hold keeps them all, a number hold keeps that number's."""
    return _combined(active_holds(tenant=tenant), number_field="source", time_field="received_at", ids=False)


# --- evidence packages -----------------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _real_name(tenant: Tenant) -> dict:
    return {
        "schema_name": tenant.schema_name,
        "name": tenant.name,
        "kind": tenant.kind,
        "licence_number": tenant.licence_number,
        "contact_name": tenant.contact_name,
        "contact_phone": tenant.contact_phone,
        "contact_email": tenant.contact_email,
        "state": tenant.state,
        "registered_at": _iso(tenant.created_at),
    }


def _messages_of(hold: LegalHold) -> list[dict]:
    from delivery.models import Message

    q = _hold_q(hold, number_field="recipient", time_field="created_at", ids=True)
    rows = []
    with schema_context(hold.tenant.schema_name):
        messages = Message.objects.filter(q).order_by("created_at", "pk").prefetch_related("parts", "events")
        for m in messages.iterator(chunk_size=500):
            rows.append(
                {
                    "id": m.pk,
                    "recipient": m.recipient,
                    "content": m.content,
                    "signature": m.signature,
                    "template": m.template,
                    "message_type": m.message_type,
                    "segments": m.segments,
                    "status": m.status,
                    "channel_id": m.channel_id,
                    "carrier": m.carrier,
                    "created_at": _iso(m.created_at),
                    "submitted_at": _iso(m.submitted_at),
                    "done_at": _iso(m.done_at),
                    "carrier_message_ids": [
                        {
                            "part": p.part,
                            "parts": p.parts,
                            "carrier_message_id": p.carrier_message_id,
                            "submitted_at": _iso(p.submitted_at),
                            "status": p.status,
                            "stat": p.stat,
                            "done_at": _iso(p.done_at),
                        }
                        for p in m.parts.all()
                    ],
                    "status_history": [
                        {"from": e.from_status, "to": e.to_status, "at": _iso(e.at), "detail": e.detail}
                        for e in m.events.all()
                    ],
                }
            )
    return rows


def compile_evidence_package(
    *, hold: LegalHold, request_reference: str, authority: str, actor: Actor, violation_id: int | None = None
) -> EvidencePackage:
    """Write the package file (JSON, full numbers: it answers a lawful request) and record its
    SHA-256. The hold must be active: released records may already be gone."""
    if not request_reference.strip() or not authority.strip():
        raise LegalHoldError("Name the lawful request and the authority.", code="request_required")
    hold = LegalHold.objects.select_related("tenant").get(pk=hold.pk)
    if hold.released_at is not None:
        raise LegalHoldError("This hold was released; place a new one first.", code="hold_released")
    compiled_at = timezone.now()
    messages = _messages_of(hold)
    document = {
        "package": {
            "request_reference": request_reference,
            "authority": authority,
            "compiled_at": compiled_at.isoformat(),
            "compiled_by": actor.label,
            "violation_id": violation_id,
            "hold": {
                "id": hold.pk,
                "basis": hold.basis,
                "reference": hold.reference,
                "scope": hold.scope,
                "placed_at": _iso(hold.placed_at),
            },
        },
        "tenant": _real_name(hold.tenant),
        "messages": messages,
    }
    body = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True).encode()
    digest = hashlib.sha256(body).hexdigest()
    relative = f"evidence/{compiled_at:%Y%m}/{hold.tenant.schema_name}-{secrets.token_hex(8)}.json"
    path = Path(settings.MEDIA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    with transaction.atomic():
        package = EvidencePackage.objects.create(
            tenant=hold.tenant,
            hold=hold,
            violation_id=violation_id,
            request_reference=request_reference[:200],
            authority=authority[:200],
            file_name=relative,
            file_size=len(body),
            sha256=digest,
            message_count=len(messages),
            compiled_by_label=actor.label,
        )
        record_operation(
            actor=actor,
            action="evidence.compile",
            tenant=hold.tenant,
            obj=package,
            reason=request_reference,
            after={"sha256": digest, "messages": len(messages), "authority": authority, "hold": hold.pk},
        )
    return package


def _ids_in_reference(reference: str) -> list[int]:
    """Message ids in a violation's reference: "123", "123, 124" or "t_abc:123"."""
    return [int(x) for x in re.findall(r"(?:^|[\s,;:#])(\d+)(?=$|[\s,;])", reference or "")]


def evidence_from_violation(
    *, violation_id: int, request_reference: str, authority: str, actor: Actor
) -> EvidencePackage:
    """From a violation of clearly illegal content: hold its messages (the tenant's whole send log
    when the violation names none) and compile the package (R-AUD-5)."""
    from compliance.models import Violation

    violation = Violation.objects.select_related("tenant").get(pk=violation_id)
    reference = f"violation:{violation.pk}"
    with transaction.atomic():
        hold = active_holds(tenant=violation.tenant).filter(basis=HoldBasis.VIOLATION, reference=reference).first()
        if hold is None:
            ids = _ids_in_reference(violation.message_reference)
            hold = place_hold(
                tenant=violation.tenant,
                basis=HoldBasis.VIOLATION,
                reference=reference,
                reason=f"evidence for {request_reference}: {violation.get_category_display()}",
                actor=actor,
                scope=HoldScope.MESSAGES if ids else HoldScope.TENANT,
                message_ids=ids,
            )
    return compile_evidence_package(
        hold=hold, request_reference=request_reference, authority=authority, actor=actor, violation_id=violation.pk
    )


def verify_package(*, package: EvidencePackage) -> bool:
    """The file still has the recorded SHA-256 (nothing changed since it was compiled)."""
    path = Path(settings.MEDIA_ROOT) / package.file_name
    return path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == package.sha256


def record_handover(*, package: EvidencePackage, handed_to: str, method: str, actor: Actor) -> EvidencePackage:
    """Record who received the package, how, and when (once)."""
    if not handed_to.strip() or not method.strip():
        raise LegalHoldError("Say who received the package and how.", code="handover_details_required")
    with transaction.atomic():
        package = EvidencePackage.objects.select_for_update().get(pk=package.pk)
        if package.handed_over_at is not None:
            raise AlreadyHandedOver(details={"handed_over_at": package.handed_over_at.isoformat()})
        package.handed_over_at = timezone.now()
        package.handed_over_to = handed_to[:200]
        package.handover_method = method[:100]
        package.handed_over_by_label = actor.label
        package.save(update_fields=["handed_over_at", "handed_over_to", "handover_method", "handed_over_by_label"])
        record_operation(
            actor=actor,
            action="evidence.hand_over",
            tenant=package.tenant,
            obj=package,
            after={"to": package.handed_over_to, "method": package.handover_method, "sha256": package.sha256},
        )
    return package
