"""Every state change of delivery: accept (R-DLV-1), status transitions, cancel, outbox relay,
maintenance notices (R-DLV-6), callbacks, tenant numbers.

The SMPP side (submit results, receipts, replies) is in delivery/sender.py and
delivery/inbound.py; both change message state only through `transition()` here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework import status as http

from smsplatform import metrics
from smsplatform.db import execute_together, insert_sql
from smsplatform.errors import Conflict, DomainError, NotFound
from tenants.models import Tenant
from tenants.reconfirmation import SPIKE_MARK, notify_volume_held
from tenants.services import Actor, record_operation

from .models import (
    FINAL_STATES,
    TRANSITIONS,
    CallbackDelivery,
    CallbackState,
    Channel,
    DeliverySettings,
    Maintenance,
    Message,
    MessageStatus,
    OutboxEntry,
    PublicHoliday,
    SendRequest,
    StatusEvent,
    TenantNumber,
)
from .routing import RoutingTable, describe_numbers, normalise_number

log = logging.getLogger(__name__)
S = MessageStatus

# --- errors ----------------------------------------------------------------------------------


class DeliveryError(DomainError):
    code = "delivery_error"


class ClientRefConflict(DeliveryError):
    code = "client_ref_conflict"
    http_status = http.HTTP_409_CONFLICT
    default_message = "This client_ref was already used with a different request body."


class BatchTooLarge(DeliveryError):
    code = "batch_too_large"
    default_message = "A batch holds at most 1000 recipients."


class InvalidSendTime(DeliveryError):
    code = "invalid_send_at"
    default_message = "send_at must be in the future (and within the scheduling horizon)."


class RecipientRejected(DeliveryError):
    """A single send whose only recipient was refused (the reason is the code)."""

    http_status = http.HTTP_422_UNPROCESSABLE_ENTITY


class MessageNotFound(NotFound):
    code = "message_not_found"
    default_message = "No such message."


class NotCancellable(Conflict):
    code = "not_cancellable"
    default_message = "Only scheduled, held or not yet submitted messages can be cancelled."


class InvalidStatusTransition(DeliveryError):
    code = "invalid_status_transition"
    http_status = http.HTTP_409_CONFLICT


class MaintenanceNoticeTooShort(DeliveryError):
    code = "maintenance_notice_too_short"
    default_message = "Maintenance must be announced at least one working day ahead (R-DLV-6)."


class InvalidMaintenanceWindow(DeliveryError):
    code = "invalid_maintenance_window"
    default_message = "Maintenance must end after it starts."


MAX_BATCH = 1000

# --- the status machine (R-DLV-1) -------------------------------------------------------------


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def transition(
    *, message: Message, to_status: str, detail: str = "", at: datetime | None = None, save: bool = True, **fields
) -> StatusEvent | None:
    """The one function that moves a message's status. A final state never goes backwards:
    an impossible move raises InvalidStatusTransition; moving to the same final state again
    (a duplicate receipt) is a no-op returning None. Call inside the tenant schema, in a
    transaction, with the message row locked when concurrent writers are possible."""
    at = at or timezone.now()
    if message.status == to_status and to_status in FINAL_STATES:
        return None
    if not can_transition(message.status, to_status):
        raise InvalidStatusTransition(
            f"A {message.status} message cannot become {to_status}.", details={"from": message.status, "to": to_status}
        )
    return _move(message=message, to_status=to_status, detail=detail, at=at, save=save, **fields)


# Issue 20 "delivered wins": a failure for want of an answer (the carrier may have taken the
# message all the same) is the one final state that evidence may overturn, and only to delivered.
LATE_EVIDENCE_REASONS = frozenset({"unconfirmed_submission", "validity_expired", "submit_failed"})


def may_deliver_after_failure(message: Message) -> bool:
    return message.status == S.FAILED and message.reason in LATE_EVIDENCE_REASONS


def deliver_failed_message(
    *, message: Message, detail: str = "", at: datetime | None = None, save: bool = True, **fields
) -> StatusEvent:
    """failed → delivered, outside the table of moves: only for a failure that lacked evidence
    (LATE_EVIDENCE_REASONS), when the carrier's receipts prove every part delivered. The caller
    captures the released hold again (billing.services.capture_released_holds)."""
    if not may_deliver_after_failure(message):
        raise InvalidStatusTransition(
            f"A {message.status} message ({message.reason or 'no reason'}) cannot become delivered.",
            details={"from": message.status, "to": S.DELIVERED},
        )
    return _move(
        message=message, to_status=S.DELIVERED, detail=detail, at=at or timezone.now(), save=save, reason="", **fields
    )


def _move(*, message: Message, to_status: str, detail: str, at: datetime, save: bool, **fields) -> StatusEvent:
    # message_id, not message=: the FK descriptor's checks cost more than the rest of a bulk
    # transition (claims, results, receipts move hundreds of messages at once)
    event = StatusEvent(
        message_id=message.pk, from_status=message.status, to_status=to_status, at=at, detail=detail[:200]
    )
    message.status = to_status
    message.status_at = at
    for name, value in fields.items():
        setattr(message, name, value)
    if save:
        message.save(update_fields=["status", "status_at", *fields])
        event.save()
    return event


# --- accepting sends (R-DLV-1) -----------------------------------------------------------------


@dataclass(frozen=True)
class RecipientInput:
    number: str
    params: dict | None = None


@dataclass(frozen=True)
class SendOutcome:
    http_status: int
    body: dict
    replayed: bool = False
    request_id: int | None = None


def body_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _check_send_at(send_at: datetime | None, now: datetime) -> datetime | None:
    if send_at is None:
        return None
    if timezone.is_naive(send_at):
        raise InvalidSendTime("send_at needs a time zone (ISO 8601 with offset).")
    horizon = timedelta(days=settings.DELIVERY_MAX_SCHEDULE_DAYS)
    if send_at <= now:
        raise InvalidSendTime()
    if send_at > now + horizon:
        raise InvalidSendTime(f"send_at may be at most {horizon.days} days ahead.")
    return send_at


def _replay(client_ref: str | None, digest: str) -> SendOutcome | None:
    if not client_ref:
        return None
    first = SendRequest.objects.filter(client_ref=client_ref).first()
    if first is None:
        return None
    if first.body_hash != digest:
        raise ClientRefConflict(details={"client_ref": client_ref})
    return SendOutcome(http_status=first.response_status, body=first.response_body, replayed=True, request_id=first.pk)


def accept_send(
    *,
    tenant: Tenant,
    actor: Actor,
    kind: str,
    signature: str,
    template: str,
    recipients: list[RecipientInput],
    params: dict | None = None,
    send_at: datetime | None = None,
    client_ref: str | None = None,
    callback_url: str = "",
) -> SendOutcome:
    """Validate, gate (compliance), price, hold and persist a send in ONE transaction (R-DLV-1,
    R-BIL-2). In a batch, per-recipient refusals are stored as rejected messages and charged
    nothing; a refused single send (422) and whole-request refusals (compliance, 402 insufficient
    balance) store nothing. The outbox row written here is what gets the work queued, even if
    this process dies right after commit."""
    if not recipients:
        raise DeliveryError("At least one recipient is required.", code="no_recipients")
    if len(recipients) > MAX_BATCH:
        raise BatchTooLarge()
    if callback_url:
        from smsplatform.webhooks import check_outbound_url

        check_outbound_url(
            callback_url, code="invalid_callback_url", allow_private=settings.DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS
        )  # SSRF: refused when saved
    now = timezone.now()
    payload = {
        "kind": kind,
        "signature": signature,
        "template": template,
        "params": params or {},
        "recipients": [[r.number, r.params] for r in recipients],
        "send_at": send_at.isoformat() if send_at else None,
        "callback_url": callback_url,
    }
    digest = body_hash(payload)
    replay = _replay(client_ref, digest)
    if replay:
        return replay
    send_at = _check_send_at(send_at, now)
    try:
        return _accept(
            tenant=tenant,
            actor=actor,
            kind=kind,
            signature=signature,
            template=template,
            recipients=recipients,
            params=params or {},
            send_at=send_at,
            client_ref=client_ref,
            callback_url=callback_url,
            digest=digest,
            now=now,
        )
    except IntegrityError:
        # Lost a race with the same client_ref: answer like the winner did.
        replay = _replay(client_ref, digest)
        if replay:
            return replay
        raise
    except DomainError as exc:  # a whole request refused (balance, compliance): its messages
        metrics.count_refused_request(exc.code, len(recipients))
        raise


# Columns the intake writes per message (the rest take their model defaults in insert_rows).
_MESSAGE_COLUMNS = (
    "id",
    "request_id",
    "client_ref",
    "recipient",
    "country",
    "carrier",
    "province",
    "signature",
    "template",
    "signature_id",
    "template_id",
    "template_version",
    "message_type",
    "params",
    "content",
    "encoding",
    "segments",
    "unit_price",
    "price_id",
    "amount",
    "hold_id",
    "status",
    "status_at",
    "reason",
    "detail",
    "send_at",
    "callback_url",
)
_EVENT_COLUMNS = ("message_id", "from_status", "to_status", "at", "detail")
# A rejected message keeps its parameters in the send log only up to this size (JSON bytes):
# a refused 1 MB parameter must not be stored (issue 7). Accepted parameters are bounded by
# the template's variables (R-CMP-2), so this only ever cuts refused ones.
PARAMS_LOG_LIMIT = 1024
DETAIL_LIMIT = 200


@dataclass(slots=True)
class _Draft:
    """One message of the request being accepted: what varies per recipient. Rows go to the
    database as tuples (smsplatform.db.insert_rows), never as Message instances (the profile)."""

    recipient: str
    params: dict
    country: str = ""
    carrier: str = ""
    province: str = ""
    content: str = ""
    encoding: str = ""
    segments: int = 0
    unit_price: int = 0
    price_id: int | None = None
    amount: int = 0
    hold_id: int | None = None
    status: str = S.ACCEPTED
    reason: str = ""
    detail: str = ""
    pk: int | None = None
    currency: str | None = None

    def reject(self, reason: str, detail: str) -> None:
        self.status, self.reason, self.detail = S.REJECTED, reason, detail[:DETAIL_LIMIT]
        self.params = params_for_log(self.params)


def params_for_log(params: dict) -> dict:
    """A refused message's parameters as the send log keeps them: as sent when small, else a
    summary (size and SHA-256, enough to match a complaint) instead of the payload."""
    encoded = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str).encode()
    if len(encoded) <= PARAMS_LOG_LIMIT:
        return params
    return {
        "_omitted": "parameters too large to keep",
        "bytes": len(encoded),
        "sha256": hashlib.sha256(encoded).hexdigest(),
    }


def _accept(
    *, tenant, actor, kind, signature, template, recipients, params, send_at, client_ref, callback_url, digest, now
):
    from billing.rules import count_segments
    from compliance import frequency
    from compliance.services import check_message

    schema = connection.schema_name
    refused = None
    with transaction.atomic():
        numbers = [normalise_number(r.number) for r in recipients]
        valid_idx = [i for i, n in enumerate(numbers) if n]
        verdicts: dict[int, object] = {}
        check = None
        if valid_idx:
            per_recipient = any(r.params for r in recipients)
            gate_params = [{**params, **(recipients[i].params or {})} for i in valid_idx] if per_recipient else params
            check = check_message(
                tenant=tenant,
                signature=signature,
                template=template,
                params=gate_params,
                recipients=[numbers[i] for i in valid_idx],
                count_volume=False,  # counted late, in _store_accepted (lock late, issue 17)
            )
            verdicts = dict(zip(valid_idx, check.verdicts, strict=True))
        facts = describe_numbers([n for n in numbers if n])
        prices: dict[tuple, object] = {}
        segments_of: dict[str, object] = {}  # one count per distinct content (shared parameters)
        drafts: list[_Draft] = []
        for i, raw in enumerate(recipients):
            number = numbers[i]
            draft = _Draft(recipient=number or str(raw.number)[:20], params={**params, **(raw.params or {})})
            drafts.append(draft)
            if not number:
                draft.reject("invalid_number", "not a valid phone number")
                continue
            f = facts[number]
            draft.country, draft.carrier, draft.province = f.country, f.carrier, f.province
            verdict = verdicts[i]
            if not verdict.allowed:
                draft.reject(verdict.reason or "rejected", verdict.detail)
                continue
            key = (check.message_type, draft.country, draft.carrier)
            if key not in prices:
                prices[key] = _price_in_force(
                    tenant=tenant, message_type=check.message_type, country=draft.country, carrier=draft.carrier, at=now
                )
            price = prices[key]
            if price is None:
                draft.reject("no_price", f"no price for {draft.country}")
                continue
            seg = segments_of.get(verdict.content)
            if seg is None:
                seg = segments_of[verdict.content] = count_segments(verdict.content)
            draft.content, draft.encoding, draft.segments = verdict.content, seg.encoding, seg.segments
            draft.unit_price, draft.price_id, draft.currency = price.unit_price, price.id, price.currency
            draft.amount = price.unit_price * seg.segments
            if verdict.held:
                draft.status, draft.detail = S.HELD, verdict.detail
            elif send_at:
                draft.status = S.SCHEDULED

        # R-CMP-8: per-recipient repeat limits, one Redis round trip for the whole request.
        counted = [d for d in drafts if d.status != S.REJECTED]
        reservation = frequency.reserve(
            tenant=tenant, message_type=check.message_type if check else "", numbers=[d.recipient for d in counted]
        )
        for index in reservation.refused:
            counted[index].reject(frequency.REASON, reservation.detail)

        if kind == SendRequest.Kind.SINGLE and drafts[0].status == S.REJECTED:
            # R-DLV-1: a refused request stores nothing (no request, message or counter row);
            # only the operation trail below keeps that it happened (issue 7).
            transaction.set_rollback(True)
            refused = drafts[0]
        else:
            try:
                request, status_code, body, accepted, rejected = _store_accepted(
                    tenant=tenant,
                    actor=actor,
                    kind=kind,
                    drafts=drafts,
                    check=check,
                    signature=signature,
                    template=template,
                    send_at=send_at,
                    client_ref=client_ref,
                    callback_url=callback_url,
                    digest=digest,
                    now=now,
                    schema=schema,
                )
            except BaseException:
                reservation.release()  # nothing was accepted (402, a lost client_ref race): un-count
                raise
    metrics.count_intake(drafts, check.message_type if check else "")
    if refused is not None:
        record_operation(  # R-AUD-3: the refusal, as a small hashed summary (no recipient, no parameters)
            actor=actor,
            action=f"delivery.send_{kind}_refused",
            tenant=tenant,
            after={"code": refused.reason, "client_ref": client_ref, "body_sha256": digest},
        )
        return SendOutcome(
            http_status=http.HTTP_422_UNPROCESSABLE_ENTITY,
            body={
                "code": refused.reason,
                "message": refused.detail or "The recipient was refused.",
                "details": {"to": refused.recipient, "client_ref": client_ref},
            },
        )
    return SendOutcome(http_status=status_code, body=body, request_id=request.pk)


def _price_in_force(*, tenant, message_type: str, country: str, carrier: str, at: datetime):
    """R-BIL-4: price_for() through the per-process cache (issue 17). An entry is kept with the
    interval it is valid in: until the next announced price of that destination or the next plan
    change of the tenant (or of the default plan), so a change taking effect is never missed;
    any edit of prices or plans bumps the "prices" counter and drops every entry."""
    from smsplatform import config_cache

    key = ("price", tenant.pk, message_type, country, carrier)
    entry = config_cache.get("prices", key, lambda: _load_price(tenant, message_type, country, carrier, at))
    price, valid_from, valid_until = entry
    if not (valid_from <= at < valid_until):
        entry = _load_price(tenant, message_type, country, carrier, at)
        config_cache.get("prices", key, lambda: entry)  # kept only if no entry replaced it meanwhile
        price = entry[0]
    return price


def _load_price(tenant, message_type: str, country: str, carrier: str, at: datetime):
    from django.db.models import Min, Q

    from billing.models import PlanAssignment, Price
    from billing.selectors import plan_of, price_for
    from billing.services import NoPrice

    try:
        price = price_for(tenant=tenant, message_type=message_type, country=country, carrier=carrier or None, at=at)
    except NoPrice:
        price = None
    plan = plan_of(tenant=tenant, at=at)
    upcoming = [
        PlanAssignment.objects.filter(
            Q(account__tenant=tenant) | Q(account__isnull=True), effective_from__gt=at
        ).aggregate(at=Min("effective_from"))["at"]
    ]
    if plan is not None:
        upcoming.append(
            Price.objects.filter(
                plan=plan,
                message_type=message_type,
                country=country.upper(),
                carrier__in=["", *([carrier] if carrier else [])],
                effective_from__gt=at,
            ).aggregate(at=Min("effective_from"))["at"]
        )
    until = min((t for t in upcoming if t is not None), default=datetime.max.replace(tzinfo=at.tzinfo))
    return price, at, until


def _store_accepted(
    *, tenant, actor, kind, drafts, check, signature, template, send_at, client_ref, callback_url, digest, now, schema
):
    """Write an accepted request: request row, messages, status events, outbox entry, operation
    record and holds (inside the caller's transaction).

    Lock late (issue 17): the two per-tenant serialisation points, the volume counter rows
    (R-CMP-6/8) and the billing account row (R-BIL-2), are taken at the end: the counters just
    before the rows are written (their answer, a spike, changes the statuses written), the
    account as the very last statement group. Concurrent sends of one tenant therefore wait
    for each other only over the last few statements, not over their gate and pricing."""
    from billing.services import HoldLine, hold_message_ids
    from compliance.services.gate import count_volume
    from tenants.models import OperationRecord

    chargeable = [d for d in drafts if d.status in (S.ACCEPTED, S.SCHEDULED, S.HELD)]
    # Ids drawn up front (one statement): holds, outbox and messages name each other before any
    # row exists, so every row is written once, complete, and the holds can be booked last.
    request_id, message_ids, hold_ids, outbox_id = _next_ids(len(drafts), holds=len(chargeable))
    request = SendRequest(
        pk=request_id, kind=kind, client_ref=client_ref or None, body_hash=digest, total=len(drafts), send_at=send_at
    )
    for draft, message_id in zip(drafts, message_ids, strict=True):
        draft.pk = message_id
    for draft, hold_id in zip(chargeable, hold_ids, strict=True):
        draft.hold_id = hold_id
    if chargeable and count_volume(tenant=tenant, count=len(chargeable)):
        for d in chargeable:  # R-CMP-8 spike: every accepted message held for review
            d.status, d.detail = S.HELD, "Volume spike: held for review (R-CMP-8)."
    signature_id = template_id = template_version = None
    message_type = ""
    if check is not None:
        signature_id, template_id = check.signature_id, check.template_id
        template_version, message_type = check.template_version, check.message_type
    accepted = len(chargeable)
    rejected = len(drafts) - accepted
    status_code, body = _response(kind=kind, request=request, messages=drafts)
    ref = client_ref or None
    at = now.isoformat()  # the same instants on every row: formatted once, not per value
    send_at_text = send_at.isoformat() if send_at else None
    statements = [
        # A concurrent request with the same client_ref fails here (unique index) and is replayed.
        insert_sql(
            SendRequest,
            (
                "id",
                "kind",
                "client_ref",
                "body_hash",
                "total",
                "accepted",
                "rejected",
                "send_at",
                "response_status",
                "response_body",
            ),
            [(request_id, kind, ref, digest, len(drafts), accepted, rejected, send_at_text, status_code, body)],
        ),
        insert_sql(
            Message,
            _MESSAGE_COLUMNS,
            [
                (
                    d.pk,
                    request_id,
                    ref,
                    d.recipient,
                    d.country,
                    d.carrier,
                    d.province,
                    signature[:40],
                    template[:40],
                    signature_id,
                    template_id,
                    template_version,
                    message_type,
                    d.params,
                    d.content,
                    d.encoding,
                    d.segments,
                    d.unit_price,
                    d.price_id,
                    d.amount,
                    d.hold_id,
                    d.status,
                    at,
                    d.reason,
                    d.detail,
                    send_at_text,
                    callback_url,
                )
                for d in drafts
            ],
        ),
    ]
    events = []
    for d in drafts:
        events.append((d.pk, "", S.ACCEPTED, at, ""))
        if d.status != S.ACCEPTED:
            events.append((d.pk, S.ACCEPTED, d.status, at, d.reason))
    statements.append(insert_sql(StatusEvent, _EVENT_COLUMNS, events))
    to_queue = [d.pk for d in chargeable if d.status in (S.ACCEPTED, S.SCHEDULED)]
    if to_queue:
        statements.append(
            insert_sql(
                OutboxEntry,
                ("id", "tenant_id", "request_id", "message_ids", "available_at"),
                [(outbox_id, tenant.pk, request_id, to_queue, (send_at or now).isoformat())],
            )
        )
    # R-AUD-3: the row record_operation() writes, as part of the same statement.
    statements.append(
        insert_sql(
            OperationRecord,
            (
                "actor_kind",
                "actor_id",
                "actor_label",
                "ip_address",
                "tenant_id",
                "action",
                "object_type",
                "object_id",
                "reason",
                "before",
                "after",
            ),
            [
                (
                    actor.kind,
                    actor.id,
                    actor.label,
                    actor.ip_address,
                    tenant.pk,
                    f"delivery.send_{kind}",
                    "SendRequest",
                    str(request_id),
                    "",
                    None,
                    {
                        "accepted": accepted,
                        "rejected": rejected,
                        "client_ref": client_ref,
                        "send_at": str(send_at or ""),
                    },
                )
            ],
        )
    )
    execute_together(statements)  # one statement: request, messages, events, outbox, trail
    notify_volume_held(
        tenant=tenant, message_ids=[d.pk for d in drafts if d.status == S.HELD and SPIKE_MARK in d.detail]
    )
    if chargeable:
        # R-BIL-2: one hold call (one account lock) for the whole request; all or nothing: a 402
        # here rolls every row above back with the caller's savepoint. Last, so the account row
        # is locked only from here to commit.
        # R-BIL-3: the message type reaches the hold, so type-limited packages pay for it.
        hold_type = check.message_type if check is not None else None
        hold_message_ids(
            tenant=tenant,
            lines=[
                HoldLine(
                    reference=f"{schema}:{d.pk}",
                    segments=d.segments,
                    unit_price=d.unit_price,
                    price_id=d.price_id,
                    message_type=hold_type,
                    currency=d.currency,
                )
                for d in chargeable
            ],
            idempotency_key=f"send:{schema}:{request_id}",
            actor=actor,
            hold_ids=[d.hold_id for d in chargeable],
            fresh_key=True,  # the request id was drawn from its sequence just now
        )
    if to_queue and send_at is None:
        # Fast path only: the periodic relay picks the entry up if this never runs.
        transaction.on_commit(lambda: _enqueue_relay(outbox_id))
    request.accepted, request.rejected = accepted, rejected
    request.response_status, request.response_body = status_code, body
    return request, status_code, body, accepted, rejected


def update_by_value(model, objs: list, fields: list[str]) -> int:
    """bulk_update for rows that mostly share their new values (a job's messages all become
    `submitted` at the same instant): one `UPDATE … WHERE pk IN (…)` per distinct value tuple.
    Django's bulk_update builds a CASE WHEN per row and field, whose compilation was the largest
    cost of recording submit results and receipts in the end-to-end profile."""
    names = [model._meta.get_field(f).attname for f in fields]
    groups: dict[str, tuple[tuple, list]] = {}
    for obj in objs:
        values = tuple(getattr(obj, n) for n in names)
        groups.setdefault(repr(values), (values, []))[1].append(obj.pk)  # repr: lists (JSON) are unhashable
    for values, pks in groups.values():
        model.objects.filter(pk__in=pks).update(**dict(zip(names, values, strict=True)))
    return len(objs)


def _next_ids(count: int, *, holds: int = 0) -> tuple[int, list[int], list[int], int]:
    """Fresh ids in one round trip: a send request and `count` messages (sequences of the current
    tenant schema), `holds` holds and an outbox entry (public)."""
    from billing.services.holds import next_hold_ids

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')), "
            "ARRAY(SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)), "
            f"{next_hold_ids(holds)}, nextval(pg_get_serial_sequence(%s, 'id'))",
            [SendRequest._meta.db_table, Message._meta.db_table, count, f"public.{OutboxEntry._meta.db_table}"],
        )
        return cursor.fetchone()


def _enqueue_relay(entry_id: int) -> None:
    from .actors import relay_outbox_entry

    try:
        relay_outbox_entry.send(entry_id)
    except Exception:  # the broker being down must not fail an accepted request; the sweeper relays
        log.exception("fast-path relay enqueue failed for outbox entry %s", entry_id)


def message_summary(m: Message | _Draft) -> dict:
    return {
        "id": m.pk,
        "to": m.recipient,
        "status": m.status,
        "reason": m.reason or None,
        # A refused recipient of a batch says why, as a refused single send does (its "message").
        "message": (m.detail or "The recipient was refused.") if m.status == S.REJECTED else None,
        "segments": m.segments,
        "unit_price": m.unit_price,
        "amount": m.amount,
    }


def _response(*, kind: str, request: SendRequest, messages: list[_Draft]) -> tuple[int, dict]:
    """The 202 body of an accepted request (a refused single send answers 422 in _accept)."""
    # Times in the API's one zone (settings.TIME_ZONE, with its offset), as every GET shows them.
    send_at = timezone.localtime(request.send_at).isoformat() if request.send_at else None
    if kind == SendRequest.Kind.SINGLE:
        return http.HTTP_202_ACCEPTED, {
            **message_summary(messages[0]),
            "client_ref": request.client_ref,
            "send_at": send_at,
        }
    return http.HTTP_202_ACCEPTED, {
        "id": request.pk,
        "client_ref": request.client_ref,
        "send_at": send_at,
        "accepted": sum(1 for m in messages if m.status != S.REJECTED),
        "rejected": sum(1 for m in messages if m.status == S.REJECTED),
        "messages": [message_summary(m) for m in messages],
    }


# --- cancel ------------------------------------------------------------------------------------

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


# --- the outbox relay (R-DLV-1 transactional outbox) -----------------------------------------


@dataclass(frozen=True)
class ChannelJob:
    channel_id: int
    tenant_id: int
    message_ids: list[int]


def relay_outbox(
    *, entry_ids: Iterable[int] | None = None, now: datetime | None = None, limit: int = 200
) -> list[ChannelJob]:
    """Turn due outbox entries into routed, queued messages and channel jobs.

    Messages are routed and marked queued, and the entry marked relayed, in one transaction;
    the jobs are sent after commit (a job never sees uncommitted rows). If the process dies
    between commit and send, `requeue_stale_queued` sends them again; senders claim messages
    with a status check, so a job sent twice submits nothing twice."""
    now = now or timezone.now()
    jobs: list[ChannelJob] = []
    with transaction.atomic():
        due = OutboxEntry.objects.filter(relayed_at__isnull=True, available_at__lte=now)
        if entry_ids is not None:
            due = due.filter(pk__in=list(entry_ids))
        entries = list(
            due.select_for_update(skip_locked=True, of=("self",))
            .select_related("tenant")
            .order_by("available_at")[:limit]
        )
        if not entries:
            return []
        table = RoutingTable.load(at=now)
        for entry in entries:
            with tenant_context(entry.tenant):
                jobs.extend(_route_and_queue(tenant=entry.tenant, message_ids=entry.message_ids, table=table, now=now))
            entry.relayed_at = now
            entry.attempts += 1
        OutboxEntry.objects.bulk_update(entries, ["relayed_at", "attempts"])
        transaction.on_commit(lambda: send_channel_jobs(jobs))
    return jobs


#: what routing reads of a message (a no-route failure's release and callback included)
ROUTE_FIELDS = (
    "id",
    "request_id",
    "status",
    "status_at",
    "message_type",
    "country",
    "carrier",
    "province",
    "reason",
    "channel_id",
    "hold_id",
    "client_ref",
    "recipient",
    "error_code",
    "submitted_at",
    "done_at",
    "callback_url",
)


def _route_and_queue(*, tenant: Tenant, message_ids: list[int], table: RoutingTable, now: datetime) -> list[ChannelJob]:
    from .bulk import insert_status_events

    messages = list(
        Message.objects.select_for_update()
        .filter(pk__in=message_ids, status__in=[S.ACCEPTED, S.SCHEDULED])
        .only(*ROUTE_FIELDS)
        .order_by("pk")  # not whole rows: the largest cost of a relay (issue 7)
    )
    per_channel: dict[int, list[Message]] = defaultdict(list)
    failed: list[Message] = []
    waiting: list[Message] = []
    events = []
    for m in messages:
        channels, matched = table.channels_for(
            message_type=m.message_type, country=m.country, carrier=m.carrier, province=m.province
        )
        if channels:
            events.append(transition(message=m, to_status=S.QUEUED, at=now, save=False, channel_id=channels[0]))
            per_channel[channels[0]].append(m)
        elif matched:
            waiting.append(m)  # every matching channel is down or in maintenance: stays for a later relay
        else:
            events.append(transition(message=m, to_status=S.FAILED, at=now, save=False, detail="no_route"))
            m.reason = "no_route"
            failed.append(m)
    changed = [m for group in per_channel.values() for m in group] + failed
    update_by_value(Message, changed, ["status", "status_at", "channel_id", "reason"])
    insert_status_events(events)
    if failed:
        release_messages_holds(messages=failed, key_prefix="noroute", reason="no route")
        for m in failed:
            enqueue_status_callback(tenant=tenant, message=m)
    if waiting:
        OutboxEntry.objects.create(
            tenant=tenant,
            request_id=waiting[0].request_id,
            message_ids=[m.pk for m in waiting],
            available_at=now + timedelta(seconds=settings.DELIVERY_NO_CHANNEL_RETRY_SECONDS),
        )
    chunk = settings.DELIVERY_JOB_SIZE
    return [
        ChannelJob(channel_id=channel_id, tenant_id=tenant.pk, message_ids=[m.pk for m in group[i : i + chunk]])
        for channel_id, group in per_channel.items()
        for i in range(0, len(group), chunk)
    ]


def release_messages_holds(*, messages: list[Message], key_prefix: str, reason: str) -> int:
    """Give back the held money of messages that will never be submitted (R-BIL-2)."""
    hold_ids = sorted(m.hold_id for m in messages if m.hold_id)
    if not hold_ids:
        return 0
    from billing.services import release_holds

    digest = hashlib.sha1(",".join(map(str, hold_ids)).encode(), usedforsecurity=False).hexdigest()
    return release_holds(
        hold_ids=hold_ids, idempotency_key=f"{key_prefix}:{connection.schema_name}:{digest}", reason=reason
    )


def send_channel_jobs(jobs: list[ChannelJob], *, delay_ms: int | None = None) -> None:
    from .actors import send_messages

    for job in jobs:
        # One queue per channel (R-DLV-3): workers consume `channel.<id>` (actors.ChannelQueues).
        message = send_messages.message(job.channel_id, job.tenant_id, job.message_ids).copy(
            queue_name=f"channel.{job.channel_id}"
        )
        send_messages.broker.enqueue(message, delay=delay_ms)


def requeue_stale_queued(*, older_than: timedelta | None = None, now: datetime | None = None) -> int:
    """Queued messages nobody claimed for a while get their channel job sent again (a lost
    enqueue after the relay committed). Harmless when the first job is merely slow."""
    now = now or timezone.now()
    if older_than is None:
        older_than = timedelta(seconds=settings.DELIVERY_REQUEUE_AFTER_SECONDS)
    tenant_ids = set(
        OutboxEntry.objects.filter(created_at__gte=now - timedelta(days=3))
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    jobs = []
    for tenant in Tenant.objects.filter(pk__in=tenant_ids):
        with tenant_context(tenant):
            stale = Message.objects.filter(status=S.QUEUED, status_at__lt=now - older_than).values_list(
                "channel_id", "pk"
            )
            per_channel = defaultdict(list)
            for channel_id, pk in stale:
                per_channel[channel_id].append(pk)
            for channel_id, ids in per_channel.items():
                chunk = settings.DELIVERY_JOB_SIZE
                jobs.extend(
                    ChannelJob(channel_id=channel_id, tenant_id=tenant.pk, message_ids=ids[i : i + chunk])
                    for i in range(0, len(ids), chunk)
                )
    send_channel_jobs(jobs)
    return sum(len(j.message_ids) for j in jobs)


# --- maintenance notices (R-DLV-6) ------------------------------------------------------------


def working_day_calendar(*, start: date, end: date) -> dict[date, bool]:
    """{day: is it a working day} for the public-holiday calendar rows in [start, end] (R-DLV-6)."""
    return dict(PublicHoliday.objects.filter(date__gte=start, date__lte=end).values_list("date", "is_makeup_workday"))


def is_working_day(day: date, calendar: dict[date, bool]) -> bool:
    """A calendar row decides (holiday → no, make-up day 调休 → yes); otherwise Monday–Friday."""
    if day in calendar:
        return calendar[day]
    return day.weekday() < 5


def add_working_days(moment: datetime, days: int) -> datetime:
    """`moment` moved forward by `days` working days, in local time: weekends and public holidays
    skipped, make-up working days (调休) counted (R-DLV-6). One query per 60 days looked at."""
    local = timezone.localtime(moment)
    window_end = local.date()
    calendar: dict[date, bool] = {}
    while days > 0:
        local += timedelta(days=1)
        if local.date() > window_end:
            # China's longest holiday stretch is 9 days; 60 days a query covers any real case in one.
            start, window_end = local.date(), local.date() + timedelta(days=60)
            calendar = working_day_calendar(start=start, end=window_end)
        if is_working_day(local.date(), calendar):
            days -= 1
    return local


def save_public_holiday(*, holiday: PublicHoliday, actor: Actor) -> PublicHoliday:
    """Create or change a calendar day (admin form); recorded (R-AUD-3)."""
    with transaction.atomic():
        created = holiday.pk is None
        holiday.save()
        record_operation(
            actor=actor,
            action="delivery.public_holiday_create" if created else "delivery.public_holiday_update",
            obj=holiday,
            after={"date": holiday.date.isoformat(), "name": holiday.name, "makeup": holiday.is_makeup_workday},
        )
    return holiday


def delete_public_holidays(*, days: list[date], actor: Actor) -> int:
    with transaction.atomic():
        deleted, _ = PublicHoliday.objects.filter(date__in=days).delete()
        record_operation(
            actor=actor, action="delivery.public_holiday_delete", after={"dates": [d.isoformat() for d in days]}
        )
    return deleted


def earliest_maintenance_start(*, now: datetime | None = None) -> datetime:
    """At least one working day's notice: the same time on the next working day."""
    return add_working_days(now or timezone.now(), 1)


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
        from tenants.duty_notices import notify_maintenance  # issue 18 hook

        notify_maintenance(maintenance=item, now=now)  # R-DLV-6: announced to tenants (R-DLV-7)
    return item


def cancel_maintenance(*, maintenance: Maintenance, actor: Actor, reason: str = "") -> Maintenance:
    with transaction.atomic():
        if maintenance.cancelled_at is None:
            maintenance.cancelled_at = timezone.now()
            maintenance.save(update_fields=["cancelled_at"])
            record_operation(actor=actor, action="delivery.cancel_maintenance", obj=maintenance, reason=reason)
    return maintenance


# --- channels --------------------------------------------------------------------------------


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


# --- secrets at rest ---------------------------------------------------------------------------


def encrypt_secret(value: str) -> str:
    """SMPP passwords and callback secrets are stored encrypted with the platform key (R-TEN-2)."""
    from tenants.services import _fernet

    return _fernet().encrypt(value.encode()).decode()


def decrypt_secret(token: str) -> str:
    from tenants.services import _fernet

    return _fernet().decrypt(token.encode()).decode()


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


def delivery_settings_for(*, tenant: Tenant) -> DeliverySettings:
    settings_row, _ = DeliverySettings.objects.get_or_create(
        tenant=tenant, defaults={"callback_secret": encrypt_secret(secrets.token_hex(32))}
    )
    return settings_row


def update_callback_settings(
    *, tenant: Tenant, callback_url: str, actor: Actor, rotate_secret: bool = False, callback_format: str | None = None
) -> DeliverySettings:
    with transaction.atomic():
        row = delivery_settings_for(tenant=tenant)
        row = DeliverySettings.objects.select_for_update().get(pk=row.pk)
        if callback_url:
            from smsplatform.webhooks import check_outbound_url

            check_outbound_url(
                callback_url, code="invalid_callback_url", allow_private=settings.DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS
            )  # SSRF: refused when saved
        before = {"callback_url": row.callback_url, "callback_format": row.callback_format}
        row.callback_url = callback_url
        row.callback_format = callback_format or row.callback_format
        if rotate_secret:
            row.callback_secret = encrypt_secret(secrets.token_hex(32))
        row.save()
        record_operation(
            actor=actor,
            action="delivery.callback_settings",
            tenant=tenant,
            obj=row,
            before=before,
            after={
                "callback_url": callback_url,
                "callback_format": row.callback_format,
                "secret_rotated": rotate_secret,
            },
        )
    return row


# --- callbacks ----------------------------------------------------------------------------------


def sign_body(*, secret: str, body: bytes) -> str:
    """X-Signature: hex HMAC-SHA256 of the raw body with the tenant's callback secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def status_event_body(message: Message) -> dict:
    return {
        "event": "message.status",
        "message_id": message.pk,
        "client_ref": message.client_ref,
        "to": message.recipient,
        "status": message.status,
        "reason": message.reason or None,
        "error_code": message.error_code or None,
        "submitted_at": timezone.localtime(message.submitted_at).isoformat() if message.submitted_at else None,
        "done_at": timezone.localtime(message.done_at).isoformat() if message.done_at else None,
        "at": timezone.localtime(message.status_at).isoformat(),
    }


def callback_body(*, callback_format: str, event: str, payload: dict, extra: dict | None = None) -> str | None:
    """A callback's JSON in the tenant's format; None when that format pushes nothing for the
    event (Alibaba's SmsReport only reports final states). `extra`: fields only Alibaba's needs."""
    if callback_format == "alibaba":
        from .alibaba.push import alibaba_body

        body = alibaba_body(event, {**payload, **(extra or {})})
        return None if body is None else json.dumps(body, ensure_ascii=False)
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


def _status_extra(message: Message) -> dict:
    return {"request_id": message.request_id, "segments": message.segments}


def enqueue_callback(
    *, tenant: Tenant, url: str, event: str, payload: dict, extra: dict | None = None
) -> CallbackDelivery | None:
    """Record a callback to POST after commit (inside the changing transaction)."""
    row = delivery_settings_for(tenant=tenant)
    url = url or row.callback_url
    body = callback_body(callback_format=row.callback_format, event=event, payload=payload, extra=extra)
    if not url or body is None:
        return None
    item = CallbackDelivery.objects.create(
        tenant=tenant,
        url=url,
        event=event,
        body=body,
        next_attempt_at=timezone.now(),
    )
    item_id = item.pk
    transaction.on_commit(lambda: _send_callback_job(item_id))
    return item


def _send_callback_job(item_id: int, delay_ms: int | None = None) -> None:
    from .actors import deliver_callback

    try:
        if delay_ms:
            deliver_callback.send_with_options(args=(item_id,), delay=delay_ms)
        else:
            deliver_callback.send(item_id)
    except Exception:  # the periodic sweep retries due callbacks
        log.exception("could not enqueue callback %s", item_id)


def enqueue_status_callback(*, tenant: Tenant, message: Message) -> CallbackDelivery | None:
    return enqueue_callback(
        tenant=tenant,
        url=message.callback_url,
        event="message.status",
        payload=status_event_body(message),
        extra=_status_extra(message),
    )


def enqueue_status_callbacks(*, tenant: Tenant, messages: list[Message]) -> list[CallbackDelivery]:
    """enqueue_status_callback for many messages at once (two queries whatever their number)."""
    if not messages:
        return []
    row = delivery_settings_for(tenant=tenant)
    default_url = row.callback_url
    now = timezone.now()
    bodies = [
        (
            m,
            callback_body(
                callback_format=row.callback_format,
                event="message.status",
                payload=status_event_body(m),
                extra=_status_extra(m),
            ),
        )
        for m in messages
        if m.callback_url or default_url
    ]
    items = CallbackDelivery.objects.bulk_create(
        [
            CallbackDelivery(
                tenant=tenant, url=m.callback_url or default_url, event="message.status", body=body, next_attempt_at=now
            )
            for m, body in bodies
            if body is not None
        ]
    )
    ids = [item.pk for item in items]
    if ids:
        transaction.on_commit(lambda: [_send_callback_job(pk) for pk in ids])
    return items


def callback_backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.DELIVERY_CALLBACK_BACKOFF_SECONDS * (2 ** max(attempts - 1, 0)), 3600))


def _blocked_destination(url: str) -> str:
    """Tenants choose callback URLs: the shared outbound check (smsplatform.webhooks, SSRF).
    Returns the reason it is refused, or ""."""
    from smsplatform.webhooks import OutboundUrlRefused, check_outbound_url

    try:
        check_outbound_url(url, when_saved=False, allow_private=settings.DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS)
    except OutboundUrlRefused as exc:
        return f"blocked: {exc.message}"[:500]
    return ""


def deliver_callback(*, callback_id: int) -> CallbackDelivery | None:
    """POST one callback, signed; on failure schedule the next attempt with exponential back-off,
    and give up (state failed, visible in the admin) after DELIVERY_CALLBACK_MAX_ATTEMPTS."""
    from smsplatform import webhooks

    with transaction.atomic():
        item = (
            CallbackDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=callback_id, state=CallbackState.PENDING)
            .select_related("tenant")
            .first()
        )
        if item is None:
            return None
        secret = decrypt_secret(delivery_settings_for(tenant=item.tenant).callback_secret)
        body = item.body.encode()
        headers = {
            "Content-Type": "application/json",
            "X-Signature": sign_body(secret=secret, body=body),
            "X-Callback-Id": str(item.pk),
            "X-Event": item.event,
        }
        item.attempts += 1
        error, code = "", None
        blocked = _blocked_destination(item.url)
        if blocked:
            item.state, item.last_error = CallbackState.FAILED, blocked
            item.save()
            return item
        try:
            # Checked again at connect time, pinned to the checked address, redirects not followed.
            code = webhooks.post(
                item.url,
                body=body,
                headers=headers,
                timeout=settings.DELIVERY_CALLBACK_TIMEOUT_SECONDS,
                allow_private=settings.DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS,
            )
        except webhooks.OutboundUrlRefused as exc:
            error = f"blocked: {exc.message}"[:500]
        except (OSError, ValueError) as exc:
            error = str(exc)[:500]
        item.last_status_code = code
        now = timezone.now()
        if code is not None and 200 <= code < 300:
            item.state, item.delivered_at, item.last_error = CallbackState.DELIVERED, now, ""
        else:
            item.last_error = error or f"HTTP {code}"
            if item.attempts >= settings.DELIVERY_CALLBACK_MAX_ATTEMPTS:
                item.state = CallbackState.FAILED
            else:
                item.next_attempt_at = now + callback_backoff(item.attempts)
                delay = int((item.next_attempt_at - now).total_seconds() * 1000)
                transaction.on_commit(lambda: _send_callback_job(callback_id, delay_ms=delay))
        item.save()
    return item


def retry_callback(*, callback: CallbackDelivery, actor: Actor) -> CallbackDelivery:
    """Operator: try a failed callback again."""
    with transaction.atomic():
        CallbackDelivery.objects.filter(pk=callback.pk).update(
            state=CallbackState.PENDING, next_attempt_at=timezone.now(), attempts=0
        )
        record_operation(actor=actor, action="delivery.retry_callback", tenant=callback.tenant, obj=callback)
        transaction.on_commit(lambda: _send_callback_job(callback.pk))
    return callback


def due_callbacks(*, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    grace = timedelta(seconds=settings.DELIVERY_CALLBACK_TIMEOUT_SECONDS * 3)
    return list(
        CallbackDelivery.objects.filter(state=CallbackState.PENDING, next_attempt_at__lte=now - grace).values_list(
            "pk", flat=True
        )[:500]
    )
