"""R-DLV-4 receipts and R-DLV-5 replies (deliver_sm), whichever bind they arrive on.

Receipts find their message through the public carrier-id lookup; one that arrives before the
submit response was recorded is parked in PendingReceipt and applied when the lookup row
appears. Each part of a long message has its own receipt; a message is `delivered` only when
every part is delivered, otherwise it takes the worst part's outcome
(rejected > undelivered > expired > unknown). Applying the same receipt twice changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_tenants.utils import tenant_context

from smsplatform import metrics
from smsplatform.db import insert_rows, load_only, tenant_scope
from smsplatform.numbers import normalise_strict, same_handset
from tenants.models import Tenant

from . import callbacks, statuses
from .bulk import insert_status_events, update_grouped
from .charges import capture_after_failure
from .models import (
    CarrierMessageId,
    Channel,
    InboundMessage,
    Message,
    MessagePart,
    MessageStatus,
    PendingReceipt,
    RecentRecipient,
    TenantNumber,
)
from .routing import channel_accounts
from .smpp.codec import ConcatBuffer

log = logging.getLogger(__name__)
S = MessageStatus
RECEIPT_FINAL = (S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.UNKNOWN)
WORST_FIRST = (S.REJECTED, S.UNDELIVERED, S.EXPIRED, S.UNKNOWN)


def handle_inbound(*, channel_id: int | None, pdu, apply: bool = False) -> None:
    """One deliver_sm. Receipts are stored (one insert, durable before the deliver_sm_resp) and
    applied in batches by `apply_pending_receipts` (the sender after each job, the idle poller,
    the listener, the periodic job); `apply=True` applies at once."""
    if pdu.is_receipt and pdu.receipt is not None:
        record_receipt(
            channel_id=channel_id,
            receipt=pdu.receipt,
            source_addr=pdu.source_addr,
            destination_addr=pdu.destination_addr,
            apply=apply,
        )
    else:
        text = reassemble_reply(channel_id=channel_id, pdu=pdu)
        if text is None:
            return  # a part of a long reply: keyword handling waits for the whole text (R-CMP-4)
        receive_reply(channel_id=channel_id, source=pdu.source_addr, destination=pdu.destination_addr, text=text)


#: the columns store_receipts writes (applied_at stays NULL until a receipt is applied)
RECEIPT_COLUMNS = (
    "channel_id",
    "carrier_message_id",
    "stat",
    "status",
    "err",
    "done_at",
    "source_addr",
    "destination_addr",
)


class StoredReceipt(NamedTuple):
    """A receipt as store_receipts stored it (a PendingReceipt row, `pk` its id), kept in memory
    by the send job that read it: the row's values without a model instance (building those was
    ~3 % of a worker's CPU, issue 16)."""

    pk: int
    channel_id: int | None
    carrier_message_id: str
    stat: str
    status: str
    err: str
    done_at: datetime | None
    source_addr: str
    destination_addr: str
    received_at: datetime


def record_receipts(*, channel_id: int | None, pdus: list) -> list[str]:
    """The receipts among the deliver_sm of one read, stored with one INSERT (durable before the
    deliver_sm_resps go out); applied later in batches like record_receipt's. Returns their
    carrier ids. Replies are not handled here (see handle_inbound)."""
    return [row.carrier_message_id for row in store_receipts(channel_id=channel_id, pdus=pdus)]


def store_receipts(*, channel_id: int | None, pdus: list) -> list[StoredReceipt]:
    """record_receipts, returning the stored rows (pk set): a send job applies the ones of its own
    messages from memory (apply_job_receipts) instead of reading them back after commit."""
    rows = [
        values
        for pdu in pdus
        if pdu.is_receipt and pdu.receipt is not None
        for values in [
            _receipt_values(
                channel_id=channel_id,
                receipt=pdu.receipt,
                source_addr=pdu.source_addr,
                destination_addr=pdu.destination_addr,
            )
        ]
        if values is not None
    ]
    now = timezone.now()
    ids = insert_rows(PendingReceipt, [*RECEIPT_COLUMNS, "received_at"], [(*row, now) for row in rows], returning="id")
    return [StoredReceipt(pk, *row, now) for row, pk in zip(rows, ids, strict=True)]


def _receipt_values(*, channel_id: int | None, receipt, source_addr: str, destination_addr: str) -> tuple | None:
    """The RECEIPT_COLUMNS of a final receipt (None for an intermediate one)."""
    status = str(receipt.status)
    status = {"failed": S.UNDELIVERED}.get(status, status)  # e.g. DELETED: the carrier gave up
    if status not in RECEIPT_FINAL:
        log.info("intermediate receipt %s (%s) ignored", receipt.message_id, receipt.stat)
        return None
    done_at = receipt.done_date
    if done_at is not None:
        # The digits are the SMSC's local time (issue 10: a China-time SMSC read as UTC put done_at
        # 8 h in the future): the channel says which zone.
        done_at = done_at.replace(tzinfo=receipt_zone(channel_id))
    # Cut to the columns: a malformed receipt must not fail the INSERT of its whole read.
    return (
        channel_id,
        receipt.message_id[:80],
        str(receipt.stat)[:10],
        status,
        str(receipt.err or "")[:10],
        done_at,
        source_addr[:32],
        destination_addr[:32],
    )


_zones: dict[int | None, tuple[float, ZoneInfo]] = {}


def receipt_zone(channel_id: int | None) -> ZoneInfo:
    """The zone a channel's SMSC writes receipt dates in (Channel.receipt_time_zone), cached a minute."""
    cached = _zones.get(channel_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    name = Channel.objects.filter(pk=channel_id).values_list("receipt_time_zone", flat=True).first() or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("channel %s: unknown receipt time zone %r, reading UTC", channel_id, name)
        zone = ZoneInfo("UTC")
    _zones[channel_id] = (time.monotonic() + 60, zone)
    return zone


def _variants(message_id: str) -> list[str]:
    from .smpp import receipts

    return list(
        dict.fromkeys(
            [receipts.normalise_message_id(message_id), message_id, *receipts.message_id_variants(message_id)]
        )
    )


def record_receipt(
    *, channel_id: int | None, receipt, source_addr: str = "", destination_addr: str = "", apply: bool = True
) -> bool:
    """Store a receipt; with `apply`, apply it now. True when it was applied now (its carrier id
    was known); otherwise it waits until the submit result is recorded."""
    values = _receipt_values(
        channel_id=channel_id, receipt=receipt, source_addr=source_addr, destination_addr=destination_addr
    )
    if values is None:
        return False
    PendingReceipt.objects.create(**dict(zip(RECEIPT_COLUMNS, values, strict=True)))
    if not apply:
        return False
    return apply_pending_receipts(carrier_ids=[receipt.message_id]) > 0


@dataclass(frozen=True)
class PartOutcome:
    message_id: int
    part: int
    status: str
    stat: str = ""
    err: str = ""
    done_at: datetime | None = None
    exact: bool = True  # matched by its exact carrier id (not a hex/decimal variant)


def apply_receipt(
    *,
    tenant: Tenant,
    message_id: int,
    part: int,
    status: str,
    stat: str = "",
    err: str = "",
    done_at: datetime | None = None,
) -> str | None:
    """Record one part's outcome (see apply_outcomes). Returns the message's new status, if any."""
    changed = apply_outcomes(tenant=tenant, outcomes=[PartOutcome(message_id, part, status, stat, err, done_at)])
    return changed.get(message_id)


#: what applying receipts reads of a message (its status callback included): not the whole row
OUTCOME_FIELDS = (*callbacks.STATUS_CALLBACK_FIELDS, "hold_id")


def apply_outcomes(*, tenant: Tenant, outcomes: list[PartOutcome]) -> dict[int, str]:
    """Apply receipts of one tenant in one transaction, a constant number of queries whatever
    their number. A part that already has an outcome ignores later ones (duplicates); a message
    moves when all its parts have one. Returns {message id: new status}.

    Issue 20 "delivered wins": a message that failed for want of evidence (unconfirmed
    submission, timeout) and whose parts all turn out delivered, by receipts matched on their
    exact carrier ids, becomes delivered and its released hold is captured again."""
    with tenant_scope(tenant), transaction.atomic():
        return _apply_outcomes_here(tenant=tenant, outcomes=outcomes)


def _apply_outcomes_here(*, tenant: Tenant, outcomes: list[PartOutcome]) -> dict[int, str]:
    """apply_outcomes inside the caller's transaction, `tenant`'s schema already current."""
    now = timezone.now()
    changed: dict[int, str] = {}
    ids = {o.message_id for o in outcomes}
    messages = {
        m.pk: m
        for m in load_only(Message.objects.select_for_update().filter(pk__any=list(ids)).order_by("pk"), OUTCOME_FIELDS)
    }
    parts: dict[int, dict[int, MessagePart]] = {}
    for p in MessagePart.objects.select_for_update().filter(message_id__in=ids).order_by("pk"):
        parts.setdefault(p.message_id, {})[p.part] = p
    touched_parts = []
    inexact = {o.message_id for o in outcomes if not o.exact}
    for o in outcomes:
        row = parts.get(o.message_id, {}).get(o.part)
        if row is None or row.status in RECEIPT_FINAL:
            continue  # unknown part, or a duplicate receipt: no effect
        row.status, row.stat, row.err, row.done_at = o.status, o.stat[:10], o.err[:10], o.done_at or now
        touched_parts.append(row)
    update_grouped(MessagePart, touched_parts, ["status", "stat", "err", "done_at"])
    events, moved, late = [], [], []
    for message_id in {p.message_id for p in touched_parts}:
        message, mine = messages.get(message_id), parts[message_id]
        expected = next(iter(mine.values())).parts
        if message is None or len(mine) < expected or any(p.status not in RECEIPT_FINAL for p in mine.values()):
            continue
        final, failing = message_outcome(list(mine.values()))
        stat = failing.stat if failing else S.DELIVERED
        done_at = max(p.done_at for p in mine.values() if p.done_at)
        if final == S.DELIVERED and message_id not in inexact and statuses.may_deliver_after_failure(message):
            events.append(
                statuses.deliver_failed_message(
                    message=message, at=now, save=False, detail=f"receipt {stat} after failure", done_at=done_at
                )
            )
            late.append((message, sorted(mine.values(), key=lambda p: p.part)))
        elif message.status == final or not statuses.can_transition(message.status, final):
            continue
        else:
            events.append(_receipt_move(message, final, failing, done_at, now))
        moved.append(message)
        changed[message_id] = final
    update_grouped(Message, moved, ["status", "status_at", "done_at", "error_code"])
    if late:
        update_grouped(Message, [m for m, _ in late], ["reason"])
        capture_after_failure(late)
    metrics.observe_receipts(touched_parts, changed, now)
    insert_status_events(events)
    callbacks.enqueue_status_callbacks(tenant=tenant, messages=moved)
    return changed


def message_outcome(parts: list) -> tuple[str, object | None]:
    """A message's status once every part has its receipt: delivered when all are, otherwise the
    worst part's outcome; and the first part that was not delivered (None when all were)."""
    outcomes = [p.status for p in parts]
    if all(o == S.DELIVERED for o in outcomes):
        return S.DELIVERED, None
    return next(o for o in WORST_FIRST if o in outcomes), next(p for p in parts if p.status != S.DELIVERED)


def _receipt_move(message: Message, final: str, failing, done_at: datetime, now: datetime) -> statuses.Move | None:
    """The status move that receipts make (message_outcome's `final` and `failing` part)."""
    return statuses.transition(
        message=message,
        to_status=final,
        at=now,
        save=False,
        detail=f"receipt {failing.stat if failing else S.DELIVERED}",
        done_at=done_at,
        error_code=(failing.err if failing else "")[:20],
    )


@dataclass
class _PartReceipt:
    """A part's outcome as settle_at_submit writes it (the shape message_outcome reads)."""

    status: str
    stat: str
    err: str
    done_at: datetime
    submitted_at: datetime


def settle_at_submit(
    *, tenant: Tenant, channel_id: int, messages: list[Message], parts_rows: list[tuple], receipts: list, now: datetime
) -> tuple[list[tuple], list[Message], list, set[str]]:
    """Receipts a send job read on its bind before it recorded its results (the SMSC answers and
    receipts a part within milliseconds), for `messages` just made `submitted` whose every part
    is among `parts_rows` (this job's MessagePart rows, as _apply_for_tenant builds them) with a
    receipt of its exact carrier id: their parts are written final and the message goes on to
    its final status in the same transaction — no second lock, read and UPDATE of the rows just
    written, as apply_job_receipts needs (issue 16). The receipts' rows are marked applied, the
    status callbacks queued. Returns (parts_rows with those outcomes, the messages settled, their
    status events, the carrier ids applied); the caller writes the messages."""
    from .smpp.receipts import normalise_message_id

    found: dict[str, list] = defaultdict(list)
    for r in receipts:
        if r.channel_id == channel_id:
            for key in dict.fromkeys((r.carrier_message_id, normalise_message_id(r.carrier_message_id))):
                found[key].append(r)
    if not found:
        return parts_rows, [], [], set()
    rows_of: dict[int, list[int]] = defaultdict(list)
    for index, row in enumerate(parts_rows):
        rows_of[row[0]].append(index)
    rows = list(parts_rows)
    settled, events, used, applied, parts_done = [], [], {}, set(), []
    for m in messages:
        indexes = rows_of.get(m.pk, [])
        if not indexes or len(indexes) != rows[indexes[0]][2] or any(rows[i][3] not in found for i in indexes):
            continue  # a part without its receipt yet, or parts recorded earlier: the usual way
        parts = []
        for i in indexes:
            r = found[rows[i][3]][0]
            part = _PartReceipt(r.status, r.stat[:10], r.err[:10], r.done_at or now, now)
            rows[i] = (*rows[i][:6], part.status, part.stat, part.err, part.done_at)
            parts.append(part)
            used.update((x.pk, x) for x in found[rows[i][3]])
            applied.update(x.carrier_message_id for x in found[rows[i][3]])
            applied.add(rows[i][3])
        final, failing = message_outcome(parts)
        events.append(_receipt_move(m, final, failing, max(p.done_at for p in parts), now))
        settled.append(m)
        parts_done += parts
    if used:
        mark_applied(list(used), now)
        metrics.count_receipts(list(used.values()), list(used))
        metrics.observe_receipts(parts_done, {m.pk: m.status for m in settled}, now)
        callbacks.enqueue_status_callbacks(tenant=tenant, messages=settled)
    return rows, settled, events, applied


def mark_applied(receipt_ids: list[int], now: datetime) -> None:
    """Stored receipts applied: applied_at set, an earlier one kept. By id alone: with
    `applied_at IS NULL` in the WHERE the planner joined the open-receipts index, read whole
    while a run leaves thousands open (13 ms a job's UPDATE, issue 16)."""
    PendingReceipt.objects.filter(pk__any=receipt_ids).update(applied_at=Coalesce("applied_at", Value(now)))


def apply_job_receipts(
    *, tenant: Tenant, channel_id: int, receipts: list[StoredReceipt], lookups: dict[str, tuple[int, int]]
) -> set[str]:
    """The receipts a send job read on its bind, applied in the transaction that records its
    results, from memory: those whose exact carrier id (or its normalised form, as
    apply_pending_receipts counts exact) the job has just recorded, `lookups` = {carrier id:
    (message id, part)}. Same bind, so same SMSC account; variants are left to
    apply_pending_receipts. Their PendingReceipt rows (stored before the deliver_sm was answered)
    are marked applied in the same transaction, so a crash before commit leaves them pending.
    Saves the after-commit PendingReceipt/CarrierMessageId reads, a transaction and a tenant
    switch per job (issue 16). Returns the carrier ids applied."""
    from .smpp.receipts import normalise_message_id

    outcomes, done, applied = [], [], set()
    for r in receipts:
        if r.channel_id != channel_id:
            continue
        cid = r.carrier_message_id
        key = cid if cid in lookups else normalise_message_id(cid)
        if key not in lookups:
            continue
        message_id, part = lookups[key]
        outcomes.append(PartOutcome(message_id, part, r.status, r.stat, r.err, r.done_at))
        done.append(r.pk)
        applied.update((cid, key))
    if not outcomes:
        return applied
    _apply_outcomes_here(tenant=tenant, outcomes=outcomes)
    mark_applied(done, timezone.now())
    metrics.count_receipts(receipts, done)
    return applied


def apply_pending_receipts(*, carrier_ids: list[str] | None = None, limit: int = 2000) -> int:
    """Apply stored receipts whose carrier id is known, in batches per tenant. Returns how many."""
    applied = 0
    with transaction.atomic():
        if carrier_ids is not None:
            # Wait for rows another applier holds (it may have found no lookup yet and leave them
            # open); rows are locked in one global order, so two appliers cannot deadlock.
            pending = PendingReceipt.objects.select_for_update().filter(
                applied_at__isnull=True, carrier_message_id__in={v for cid in carrier_ids for v in _variants(cid)}
            )
        else:  # the sweep: skip what others are applying right now
            pending = PendingReceipt.objects.select_for_update(skip_locked=True).filter(applied_at__isnull=True)
        rows = load_only(
            pending.order_by("received_at", "pk")[:limit],
            (
                "id",
                "channel_id",
                "carrier_message_id",
                "status",
                "stat",
                "err",
                "done_at",
                "received_at",
                "source_addr",
            ),
        )
        if not rows:
            return 0
        accounts = channel_accounts()
        variant_after = timezone.now() - timedelta(seconds=settings.DELIVERY_RECEIPT_VARIANT_WAIT_SECONDS)
        owners = receipt_owners(rows, accounts=accounts, variant_after=variant_after)
        per_tenant: dict[int, tuple[Tenant, list[PartOutcome]]] = {}
        done = []
        for receipt in rows:
            if receipt.pk not in owners:
                continue  # its submit result is not recorded yet
            match, exact = owners[receipt.pk]
            per_tenant.setdefault(match.tenant_id, (match.tenant, []))[1].append(
                PartOutcome(
                    match.message_id,
                    match.part,
                    receipt.status,
                    receipt.stat,
                    receipt.err,
                    receipt.done_at,
                    exact=exact,
                )
            )
            done.append(receipt.pk)
        for tenant, outcomes in per_tenant.values():
            apply_outcomes(tenant=tenant, outcomes=outcomes)
        if done:
            mark_applied(done, timezone.now())
            metrics.count_receipts(rows, done)
            applied = len(done)
    return applied


def receipt_owners(
    rows: list[PendingReceipt], *, accounts: dict[int, tuple], variant_after: datetime | None
) -> dict[int, tuple[CarrierMessageId, bool]]:
    """{receipt pk: (the lookup row of the part it belongs to, matched exactly)}; a receipt
    without an owner is absent. Only ids of the receipt's own SMSC account count (issue 10).

    Its exact id first (normalised or as written). Otherwise one hex/decimal variant (an SMSC
    that writes the id in hex in submit_sm_resp and in decimal in the receipt, or the reverse):
    only after `variant_after` (None: at once), so that its own submit result can land first,
    never on exact-only channels, and only a part whose message went to the handset the receipt
    comes from (its source_addr): "419" read as hex is 1049, the id of some other message whose
    own receipt may still be on its way; when the sender of "419" died before recording it
    (issue 16), giving its receipt to "1049" delivered the wrong message and left the right one
    without its evidence, so it was sent twice."""
    variants = {r.pk: _variants(r.carrier_message_id) for r in rows}
    account_channels = [pk for pk, acct in accounts.items() if acct in {accounts.get(r.channel_id) for r in rows}]
    found = load_only(
        CarrierMessageId.objects.filter(
            carrier_message_id__any={v for vs in variants.values() for v in vs}, channel_id__in=account_channels
        ),
        ("id", "channel_id", "carrier_message_id", "tenant_id", "message_id", "part", "created_at"),
    )
    tenants = Tenant.objects.in_bulk({row.tenant_id for row in found})  # one query, not a join per row
    lookups: dict[tuple, list[CarrierMessageId]] = defaultdict(list)
    for row in found:
        row.tenant = tenants[row.tenant_id]
        lookups[(accounts.get(row.channel_id), row.carrier_message_id)].append(row)
    exact_only = _exact_only_channels() if found else set()
    owners: dict[int, tuple[CarrierMessageId, bool]] = {}
    maybe: dict[int, list[CarrierMessageId]] = {}
    for receipt in rows:
        account = accounts.get(receipt.channel_id)
        exact = [
            row
            for v in dict.fromkeys((variants[receipt.pk][0], receipt.carrier_message_id))
            for row in lookups[(account, v)]
        ]
        if exact:
            owners[receipt.pk] = (max(exact, key=lambda row: row.created_at), True)
        elif receipt.channel_id not in exact_only and (variant_after is None or receipt.received_at <= variant_after):
            others = [row for v in variants[receipt.pk][1:] for row in lookups[(account, v)]]
            if others:
                maybe[receipt.pk] = others
    if maybe:
        numbers = _recipients([row for others in maybe.values() for row in others])
        for receipt in rows:
            fitting = {
                (row.tenant_id, row.message_id, row.part): row
                for row in maybe.get(receipt.pk, [])
                if same_handset(receipt.source_addr, numbers.get((row.tenant_id, row.message_id), ""))
            }
            if len(fitting) == 1:
                owners[receipt.pk] = (next(iter(fitting.values())), False)
    return owners


def _recipients(rows: list[CarrierMessageId]) -> dict[tuple[int, int], str]:
    """{(tenant id, message id): recipient} of lookup rows (one query per tenant schema)."""
    by_tenant: dict[int, tuple[Tenant, set[int]]] = {}
    for row in rows:
        by_tenant.setdefault(row.tenant_id, (row.tenant, set()))[1].add(row.message_id)
    found = {}
    for tenant_id, (tenant, ids) in by_tenant.items():
        with tenant_scope(tenant):
            found.update(
                ((tenant_id, pk), recipient)
                for pk, recipient in Message.objects.filter(pk__in=ids).values_list("pk", "recipient")
            )
    return found


def _exact_only_channels() -> set[int]:
    return set(Channel.objects.filter(receipt_id_match="exact").values_list("pk", flat=True))


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


def last_sender_to(*, channel_id: int | None, number: str) -> Tenant | None:
    """The tenant that last sent to `number` through this channel's SMSC account (a reply to the
    bare source address carries no extension: issue 10, R-CMP-4)."""
    accounts = channel_accounts()
    account = accounts.get(channel_id)
    if account is None:
        return None
    row = (
        RecentRecipient.objects.filter(
            channel_id__in=[pk for pk, acct in accounts.items() if acct == account], recipient=number.lstrip("+")
        )
        .select_related("tenant")
        .order_by("-sent_at")
        .first()
    )
    return row.tenant if row else None


_mo_parts = ConcatBuffer(max_age=600.0)


def reassemble_reply(*, channel_id: int | None, pdu) -> str | None:
    """The whole text of a concatenated reply (UDH or sar_* TLVs) once every part arrived, else
    None (the part is kept in this process for up to 10 minutes); a single-part reply as it is."""
    key = (channel_id, pdu.source_addr, pdu.destination_addr)
    return _mo_parts.add(key, pdu.concat, pdu.text, now=time.monotonic())


def receive_reply(*, channel_id: int | None, source: str, destination: str, text: str) -> InboundMessage | None:
    """Store a reply in its tenant's schema, act on opt-out keywords at once (R-CMP-4), call back."""
    from compliance.services import apply_inbound_keyword

    tenant = tenant_for_destination(channel_id=channel_id, destination=destination)
    if tenant is None:
        tenant = last_sender_to(channel_id=channel_id, number=source)
    if tenant is None:
        log.warning("reply to %s on channel %s matches no tenant number; dropped", destination, channel_id)
        return None
    number = normalise_strict(source) or normalise_strict("+" + source.lstrip("+")) or source
    now = timezone.now()
    with tenant_context(tenant), transaction.atomic():
        action = apply_inbound_keyword(tenant=tenant, number=number, text=text)
        reply = InboundMessage.objects.create(
            source=number,
            destination=destination,
            text=text,
            keyword_action=action or "",
            channel_id=channel_id,
            received_at=now,
        )
        callbacks.enqueue_callback(
            tenant=tenant,
            url="",
            event="reply",
            payload={
                "event": "reply",
                "id": reply.pk,
                "from": number,
                "to": destination,
                "text": text,
                "keyword_action": action,
                "received_at": now.isoformat(),
            },
        )
    return reply
