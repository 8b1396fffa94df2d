"""Issue 21, item 3 (R-DLV-3, R-DLV-4): ask the SMSC instead of waiting on its patience.

A receipt the SMSC gave up redelivering (during our outage, or lost on its side) left a message
`submitted` until the 72 h expiry. On channels with `Channel.query_sm_enabled` (off by default:
not every carrier supports query_sm), `query_stale_parts` asks for each part that has a carrier id
and no outcome after DELIVERY_QUERY_AFTER_SECONDS, over a pooled bind of the worker, and applies a
final `message_state` exactly as a receipt: a PendingReceipt row through delivery/inbound.py, then
`apply_pending_receipts` (a real receipt arriving later is a duplicate and changes nothing). A part
still en route, or unknown to the SMSC (ESME_RQUERYFAIL: we hold its carrier id, so the SMSC did
accept it), is asked again after the same interval; the 72 h expiry stays the backstop.

`unknown_submission` messages are not asked: their lost answer is the carrier id query_sm needs,
so evidence and the type's policy settle them (docs/delivery.md "Unknown submissions").
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import tenant_context
from smpplib import consts

from tenants.models import Tenant

from . import inbound
from .models import Channel, MessagePart, MessageStatus
from .sender import apply_submit_results, source_address
from .smpp.pool import BindsBusy, SessionRegistry
from .smpp.receipts import STAT_TO_STATUS, Receipt, normalise_message_id
from .sweeps import delivery_tenants

log = logging.getLogger(__name__)
S = MessageStatus

#: message_state answers applied as the part's outcome. UNKNOWN (7) is not: it says nothing about
#: the handset, and a final part ignores the real receipt that may still come.
FINAL_QUERY_STATS = frozenset({"DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED"})
#: the SMSC does not do query_sm (generic_nack) or not on this bind
UNSUPPORTED = frozenset({consts.SMPP_ESME_RINVCMDID, consts.SMPP_ESME_RINVBNDSTS})
QUERY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class _Ask:
    tenant: Tenant
    part_id: int
    carrier_message_id: str  # normalised, as the lookup (CarrierMessageId) has it
    smsc_message_id: str  # as the SMSC gave it: what query_sm must carry
    source: str  # our source address, as submitted (query_sm must repeat it)
    recipient: str


_SMPP_TIME = re.compile(r"^(\d{12})(\d)(\d{2})([+-])$")


def parse_smpp_time(value: str) -> datetime | None:
    """SMPP 3.4 absolute time "YYMMDDhhmmsstnnp" (nn quarter hours from UTC, p '+'/'-') → aware
    UTC; None when empty, relative ('R') or malformed."""
    match = _SMPP_TIME.match((value or "").strip())
    if match is None:
        return None
    digits, _tenths, quarters, sign = match.groups()
    try:
        local = datetime.strptime(digits, "%y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    offset = timedelta(minutes=15 * int(quarters))
    return local - offset if sign == "+" else local + offset


def stale_parts(*, channels: dict[int, Channel], cutoff: datetime, limit: int) -> dict[int, list[_Ask]]:
    """Per channel, the oldest parts with a carrier id and no outcome since before `cutoff`, of
    messages still `submitted`, not asked since `cutoff`."""
    asks: dict[int, list[_Ask]] = defaultdict(list)
    days = settings.DELIVERY_RECEIPT_TIMEOUT_HOURS // 24 + 3
    for tenant in delivery_tenants(days=days):
        with tenant_context(tenant):
            rows = (
                MessagePart.objects.filter(
                    status=S.SUBMITTED,
                    submitted_at__lt=cutoff,
                    message__status=S.SUBMITTED,
                    message__channel_id__in=list(channels),
                )
                .filter(Q(queried_at__isnull=True) | Q(queried_at__lt=cutoff))
                .exclude(carrier_message_id="")
                .order_by("submitted_at", "pk")
                .values_list(
                    "pk", "carrier_message_id", "smsc_message_id", "message__channel_id", "message__recipient"
                )[:limit]
            )
            sources: dict[int, str] = {}
            for part_id, carrier_id, smsc_id, channel_id, recipient in rows:
                if channel_id not in sources:
                    sources[channel_id] = source_address(channel=channels[channel_id], tenant=tenant)
                # a part proven by a receipt only (reconciliation) has no raw id: the normalised one
                asked = smsc_id or carrier_id
                asks[channel_id].append(_Ask(tenant, part_id, carrier_id, asked, sources[channel_id], recipient))
    return asks


def query_stale_parts(*, now: datetime | None = None) -> dict[str, int]:
    """Ask the SMSC about parts long without a receipt (channels with query_sm_enabled) and apply
    what is final. Returns counts: asked, final, pending, unknown_at_smsc, unsupported, no_answer."""
    now = now or timezone.now()
    counts = dict.fromkeys(("asked", "final", "pending", "unknown_at_smsc", "unsupported", "no_answer"), 0)
    channels = {c.pk: c for c in Channel.objects.filter(query_sm_enabled=True, enabled=True)}
    if not channels:
        return counts
    cutoff = now - timedelta(seconds=settings.DELIVERY_QUERY_AFTER_SECONDS)
    limit = settings.DELIVERY_QUERY_BATCH
    for channel_id, asks in stale_parts(channels=channels, cutoff=cutoff, limit=limit).items():
        asks = sorted(asks, key=lambda a: a.part_id)[:limit]
        for key, n in _ask_channel(channel=channels[channel_id], asks=asks, now=now).items():
            counts[key] += n
    if counts["asked"]:
        log.info("query_sm sweep: %s", counts)
    return counts


def _ask_channel(*, channel: Channel, asks: list[_Ask], now: datetime) -> dict[str, int]:
    from .smpp.results import SmppError

    counts: dict[str, int] = defaultdict(int)
    try:
        holder = SessionRegistry.acquire(channel, wait=5.0)
    except (BindsBusy, SmppError, OSError) as exc:  # busy or down: the next run asks again
        log.info("query_sm: no bind of channel %s now (%s); asking later", channel.pk, exc)
        return counts
    lost = False
    try:
        answers = holder.session.query([(a.smsc_message_id, a.source) for a in asks], timeout=QUERY_TIMEOUT_SECONDS)
        lost = not holder.session.connected
        late_results = holder.take_results()
    finally:
        if lost:
            SessionRegistry.discard(holder)
        else:
            SessionRegistry.release(holder)
    if late_results:  # submit responses of an earlier job read while we waited
        apply_submit_results(channel_id=channel.pk, results=late_results)
    holder.apply_inbound()

    zone = inbound.receipt_zone(channel.pk)
    answered: dict[int, list[int]] = defaultdict(list)  # tenant id → part ids asked and answered
    tenants: dict[int, Tenant] = {}
    carrier_ids: list[str] = []
    unsupported = None
    for ask, answer in zip(asks, answers, strict=True):
        counts["asked"] += 1
        if answer.command_status < 0:  # timeout / link lost: asked again on the next run
            counts["no_answer"] += 1
            continue
        tenants[ask.tenant.pk] = ask.tenant
        answered[ask.tenant.pk].append(ask.part_id)
        if answer.command_status in UNSUPPORTED:
            counts["unsupported"] += 1
            unsupported = answer.command_status
        elif not answer.ok:
            counts["unknown_at_smsc"] += 1  # e.g. ESME_RQUERYFAIL: purged or never kept by the SMSC
        elif answer.stat in FINAL_QUERY_STATS:
            done = parse_smpp_time(answer.final_date)
            receipt = Receipt(
                message_id=normalise_message_id(ask.carrier_message_id),
                stat=answer.stat,
                err=f"{answer.error_code:03d}",
                submit_date=None,
                # inbound reads receipt dates as the channel's local time: hand it the same instant there
                done_date=done.astimezone(zone) if done else None,
                status=STAT_TO_STATUS[answer.stat],
                raw_message_id=ask.smsc_message_id,
            )
            inbound.record_receipt(
                channel_id=channel.pk,
                receipt=receipt,
                source_addr=ask.recipient.lstrip("+"),
                destination_addr=ask.source,
                apply=False,
            )
            carrier_ids.append(receipt.message_id)
            counts["final"] += 1
        else:
            counts["pending"] += 1  # ENROUTE, ACCEPTD, UNKNOWN: not final yet
    if unsupported is not None:
        log.warning(
            "channel %s: the SMSC refuses query_sm (0x%08x); switch query_sm_enabled off for it",
            channel.pk,
            unsupported,
        )
    for tenant_id, part_ids in answered.items():
        with tenant_context(tenants[tenant_id]):
            MessagePart.objects.filter(pk__in=part_ids).update(queried_at=now)
    if carrier_ids:
        inbound.apply_pending_receipts(carrier_ids=carrier_ids)
    return counts
