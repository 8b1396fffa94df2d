"""Accepting sends (R-DLV-1): validation, the compliance gate, prices and holds, idempotency,
and the rows of a request written in one statement, with its outbox entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework import status as http

from compliance.services.gate import SPIKE_MARK
from smsplatform import jobs, metrics
from smsplatform.db import execute_together, insert_sql
from smsplatform.errors import DomainError
from smsplatform.numbers import normalise_strict
from tenants.duty_notices import notify_volume_held
from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .errors import BatchTooLarge, ClientRefConflict, DeliveryError, InvalidSendTime
from .models import Message, MessageStatus, OutboxEntry, SendRequest, StatusEvent
from .routing import describe_numbers

log = logging.getLogger(__name__)
S = MessageStatus


MAX_BATCH = 1000


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
    from compliance import frequency
    from compliance.services import check_message
    from smsplatform.sms_text import count_segments

    schema = connection.schema_name
    refused = None
    with transaction.atomic():
        numbers = [normalise_strict(r.number) for r in recipients]
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
    try:
        jobs.enqueue("relay_outbox_entry_job", queue="delivery", entry_id=entry_id)
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
