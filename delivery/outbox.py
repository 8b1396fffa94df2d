"""The transactional outbox (R-DLV-1): due entries routed into queued messages and channel jobs,
sent after commit; stale queued messages re-sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from smsplatform import jobs
from smsplatform.db import load_only
from tenants.models import Tenant

from .callbacks import STATUS_CALLBACK_FIELDS, enqueue_status_callbacks
from .charges import release_messages_holds
from .models import Message, MessageStatus, OutboxEntry
from .routing import RoutingTable
from .statuses import transition

S = MessageStatus


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
ROUTE_FIELDS = (*STATUS_CALLBACK_FIELDS, "message_type", "country", "carrier", "province", "channel_id", "hold_id")


def _route_and_queue(*, tenant: Tenant, message_ids: list[int], table: RoutingTable, now: datetime) -> list[ChannelJob]:
    from .bulk import insert_status_events, update_grouped

    messages = load_only(  # not whole rows: the largest cost of a relay (issue 7)
        Message.objects.select_for_update()
        .filter(pk__any=message_ids, status__in=[S.ACCEPTED, S.SCHEDULED])
        .order_by("pk"),
        ROUTE_FIELDS,
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
    update_grouped(Message, changed, ["status", "status_at", "channel_id", "reason"])
    insert_status_events(events)
    if failed:
        release_messages_holds(messages=failed, key_prefix="noroute", reason="no route")
        enqueue_status_callbacks(tenant=tenant, messages=failed)
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


def send_channel_jobs(channel_jobs: list[ChannelJob], *, delay_ms: int | None = None) -> None:
    for job in channel_jobs:
        # One queue per channel (R-DLV-3): workers consume `channel.<id>` (actors.ChannelQueues).
        jobs.enqueue(
            "send_messages_job",
            queue=f"channel.{job.channel_id}",
            delay_ms=delay_ms,
            channel_id=job.channel_id,
            tenant_id=job.tenant_id,
            message_ids=job.message_ids,
        )


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
