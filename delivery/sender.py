"""R-DLV-3: submitting claimed messages over per-thread SMPP sessions, and applying the results.

Never twice: a sender first *claims* its messages (queued → submitting, with a fresh claim token)
in a committed transaction, then submits, then records the results (submitted + capture, or
retry/failover, or failed + release) in a second transaction. A sender that dies in between
leaves `submitting` rows; `mark_stale_submissions` turns them into `unknown_submission`, which
`reconcile_unknown_submissions` resolves from receipts (see docs/delivery.md) instead of
submitting them blindly again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Tenant

from . import services
from .models import (
    CarrierMessageId,
    Channel,
    Message,
    MessagePart,
    MessageStatus,
    OutboxEntry,
    StatusEvent,
    TenantNumber,
)
from .routing import RoutingTable

log = logging.getLogger(__name__)
S = MessageStatus

# --- the per-thread session registry ----------------------------------------------------------


@dataclass(eq=False)
class ChannelSession:
    """One SmppSession owned by one worker thread, plus the results it has collected.

    `lock` is held by the owner while it submits; between jobs the worker's idle poller takes
    it for a moment to read the bind (receipts, replies, enquire_link), so an idle bind never
    sits on deliver_sm. The session is never used by two threads at once."""

    channel_id: int
    fingerprint: tuple
    session: object = None
    results: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    receipt_ids: list = field(default_factory=list)

    def on_inbound(self, pdu) -> None:
        """deliver_sm on this bind: stored before it is answered (an exception makes the session
        answer ESME_RX_T_APPN, so the SMSC delivers it again); receipts are applied in a batch
        by apply_inbound() once the job's results are recorded."""
        from .inbound import handle_inbound

        handle_inbound(channel_id=self.channel_id, pdu=pdu)
        if pdu.is_receipt and pdu.receipt is not None:
            self.receipt_ids.append(pdu.receipt.message_id)

    def apply_inbound(self) -> int:
        from .inbound import apply_pending_receipts

        ids = list(self.receipt_ids)
        del self.receipt_ids[: len(ids)]
        return apply_pending_receipts(carrier_ids=ids) if ids else 0

    def take_results(self) -> list:
        taken = list(self.results)  # the session appends to this very list: clear it in place
        del self.results[: len(taken)]
        return taken


class SessionRegistry:
    """Long-lived transceiver binds, one per (thread, channel): a session is never shared
    between threads (smpplib is not thread-safe)."""

    _local = threading.local()
    _all: ClassVar[set] = set()  # every live ChannelSession of this process (for the idle poller)
    _all_lock = threading.Lock()

    @classmethod
    def _sessions(cls) -> dict[int, ChannelSession]:
        if not hasattr(cls._local, "sessions"):
            cls._local.sessions = {}
        return cls._local.sessions

    @classmethod
    def session_for(cls, channel: Channel) -> ChannelSession:
        from .smpp import SmppSession

        fingerprint = (channel.host, channel.port, channel.system_id, channel.password, channel.system_type,
                       channel.source_addr, channel.window_size, channel.tps_limit)
        sessions = cls._sessions()
        current = sessions.get(channel.pk)
        if current is not None and current.fingerprint == fingerprint and current.session.connected:
            return current
        if current is not None:
            cls.drop(channel.pk)
        holder = ChannelSession(channel_id=channel.pk, fingerprint=fingerprint)
        holder.session = SmppSession(
            host=channel.host, port=channel.port, system_id=channel.system_id,
            password=services.decrypt_secret(channel.password),
            system_type=channel.system_type, source_addr=channel.source_addr, window=channel.window_size,
            tps=float(channel.tps_limit) if channel.tps_limit else None,
            on_result=holder.results.append,
            on_inbound=holder.on_inbound,
        )
        holder.session.connect()
        sessions[channel.pk] = holder
        with cls._all_lock:
            cls._all.add(holder)
        return holder

    @classmethod
    def drop(cls, channel_id: int) -> None:
        holder = cls._sessions().pop(channel_id, None)
        if holder is not None:
            with cls._all_lock:
                cls._all.discard(holder)
            try:
                with holder.lock:
                    holder.session.close()
            except Exception:  # a broken socket cannot unbind; it is gone either way
                log.debug("closing session of channel %s failed", channel_id, exc_info=True)

    @classmethod
    def close_all(cls) -> None:
        for channel_id in list(cls._sessions()):
            cls.drop(channel_id)

    @classmethod
    def poll_idle(cls) -> int:
        """Read every idle bind of this process once (called by the worker's idle poller)."""
        from .smpp import SmppError

        with cls._all_lock:
            holders = list(cls._all)
        polled = 0
        for holder in holders:
            if not holder.lock.acquire(blocking=False):
                continue  # its owner is submitting: it reads the bind itself
            try:
                if holder.session.connected:
                    holder.session.poll(0)
                    polled += 1
                results = holder.take_results()
            except (SmppError, OSError):
                log.info("idle bind of channel %s lost; its owner reconnects on the next job", holder.channel_id)
                results = holder.take_results()
            finally:
                holder.lock.release()
            if results:  # late submit responses of an earlier job
                apply_submit_results(channel_id=holder.channel_id, results=results)
            holder.apply_inbound()
        return polled


# --- claiming ----------------------------------------------------------------------------------


def claim_messages(*, channel_id: int, message_ids: list[int], token: str) -> list[Message]:
    """queued → submitting with a claim token, committed before anything is sent."""
    now = timezone.now()
    with transaction.atomic():
        messages = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(pk__in=message_ids, status=S.QUEUED, channel_id=channel_id)
            .order_by("pk")
        )
        events = []
        for m in messages:
            tried = list(m.tried_channels)
            if channel_id not in tried:
                tried.append(channel_id)
            events.append(services.transition(
                message=m, to_status=S.SUBMITTING, at=now, save=False, claim_token=token, submitting_at=now,
                submit_attempts=m.submit_attempts + 1, tried_channels=tried,
            ))
        services.update_by_value(
            Message, messages, ["status", "status_at", "claim_token", "submitting_at", "submit_attempts", "tried_channels"]
        )
        StatusEvent.objects.bulk_create(events)
    return messages


def source_address(*, channel: Channel, tenant: Tenant) -> str:
    ext = TenantNumber.objects.filter(tenant=tenant).order_by("pk").values_list("extension", flat=True).first()
    return f"{channel.source_addr}{ext or ''}"


# --- one channel job ---------------------------------------------------------------------------


def send_messages(*, channel_id: int, tenant_id: int, message_ids: list[int]) -> dict:
    """Claim, submit over this thread's session, wait for the responses, record the results."""
    from .smpp import SmppError

    tenant = Tenant.objects.get(pk=tenant_id)
    channel = Channel.objects.filter(pk=channel_id).first()
    token = uuid.uuid4().hex
    with tenant_context(tenant):
        claimed = claim_messages(channel_id=channel_id, message_ids=message_ids, token=token)
    if not claimed:
        return {"claimed": 0}
    if channel is None or not channel.enabled:
        with tenant_context(tenant):
            retry_elsewhere(tenant=tenant, messages=claimed, token=token, reason="channel disabled")
        return {"claimed": len(claimed), "failed_over": len(claimed)}
    try:
        holder = SessionRegistry.session_for(channel)
    except (SmppError, OSError) as exc:
        services.mark_channel_down(channel_id=channel_id, error=f"bind failed: {exc}")
        with tenant_context(tenant):
            retry_elsewhere(tenant=tenant, messages=claimed, token=token, reason=f"bind failed: {exc}")
        return {"claimed": len(claimed), "failed_over": len(claimed)}
    services.mark_channel_up(channel_id=channel_id)
    with tenant_context(tenant):
        source = source_address(channel=channel, tenant=tenant)
    schema = tenant.schema_name
    broken = None
    with holder.lock:
        for m in claimed:
            try:
                holder.session.submit(
                    ref=f"{schema}:{m.pk}:{token}", source=source, destination=m.recipient.lstrip("+"), text=m.content
                )
            except (SmppError, OSError) as exc:
                # The session reported every part it had taken (answered, or transient); messages
                # after this one were never handed over.
                broken = exc
                break
        if broken is None:
            try:
                holder.session.drain(settings.DELIVERY_SUBMIT_TIMEOUT_SECONDS)
                _linger(holder)
            except (SmppError, OSError) as exc:
                broken = exc
        results = holder.take_results()  # under the lock: the idle poller cannot take them first
    if broken is not None:
        SessionRegistry.drop(channel_id)
        log.warning("channel %s session lost: %s", channel_id, broken)
    reported = {r.ref.split(":")[1] for r in results if r.ref.count(":") == 2}
    outcome = apply_submit_results(channel_id=channel_id, results=results)
    with tenant_context(tenant):
        leftover = list(Message.objects.filter(pk__in=[m.pk for m in claimed], status=S.SUBMITTING, claim_token=token))
        # No result at all after a broken session: never handed to the SMSC, safe to send again.
        unsent = [m for m in leftover if broken is not None and str(m.pk) not in reported]
        retry_elsewhere(tenant=tenant, messages=unsent, token=token, reason=f"not sent: {broken}")
        # Handed over but no (complete) answer yet: we cannot know whether the SMSC took them.
        unsent_ids = {m.pk for m in unsent}
        with transaction.atomic():
            pending = list(
                Message.objects.select_for_update().filter(
                    pk__in=[m.pk for m in leftover if m.pk not in unsent_ids], status=S.SUBMITTING, claim_token=token
                )
            )
            for m in pending:
                services.transition(message=m, to_status=S.UNKNOWN_SUBMISSION, detail="no submit response")
    outcome.update(claimed=len(claimed), unsent=len(unsent), unknown=len(pending))
    outcome["receipts"] = holder.apply_inbound()
    return outcome


def _linger(holder: ChannelSession) -> None:
    """Read a little longer: receipts of what we just sent often follow right away, and this
    bind is only read while a job runs."""
    linger = settings.DELIVERY_RECEIPT_LINGER_SECONDS
    if linger > 0:
        holder.session.poll(linger)


# --- recording results -------------------------------------------------------------------------


def _hash_key(prefix: str, ids: list[int]) -> str:
    return prefix + hashlib.sha1(",".join(map(str, sorted(ids))).encode(), usedforsecurity=False).hexdigest()


def apply_submit_results(*, channel_id: int, results: list) -> dict:
    """Record SubmitResults (any tenant, any claim): carrier ids + capture, failover, or failure."""
    by_ref: dict[str, list] = defaultdict(list)
    for r in results:
        by_ref[r.ref].append(r)
    per_schema: dict[str, dict[int, tuple[str, list]]] = defaultdict(dict)
    for ref, parts in by_ref.items():
        try:
            schema, message_id, token = ref.split(":")
        except ValueError:
            log.warning("submit result with a foreign ref %r", ref)
            continue
        per_schema[schema][int(message_id)] = (token, parts)
    totals = defaultdict(int)
    for schema, items in per_schema.items():
        tenant = Tenant.objects.filter(schema_name=schema).first()
        if tenant is None:
            continue
        with tenant_context(tenant):
            for key, value in _apply_for_tenant(tenant=tenant, channel_id=channel_id, items=items).items():
                totals[key] += value
    return dict(totals)


def _apply_for_tenant(*, tenant: Tenant, channel_id: int, items: dict[int, tuple[str, list]]) -> dict:
    from billing.services import Capture, capture_holds

    now = timezone.now()
    schema = connection.schema_name
    submitted: list[Message] = []
    failed: list[Message] = []
    retry: list[Message] = []
    carrier_ids: list[str] = []
    with transaction.atomic():
        messages = Message.objects.select_for_update().filter(
            pk__in=list(items), status__in=[S.SUBMITTING, S.UNKNOWN_SUBMISSION]
        )
        parts_rows, lookups, captures, events = [], [], [], []
        for m in messages:
            token, results = items[m.pk]
            if m.claim_token != token:
                continue  # a result of an older claim: that claim was already resolved
            expected = results[0].parts
            if len({r.part for r in results}) < expected:
                continue  # incomplete: left for the caller (unknown_submission) or a later poll
            ok = sorted((r for r in results if r.command_status == 0 and r.message_id), key=lambda r: r.part)
            if ok:
                # R-BIL-2/8: the carrier accepted it: capture with carrier id + submit time.
                for r in ok:
                    parts_rows.append(MessagePart(
                        message=m, part=r.part, parts=r.parts, carrier_message_id=r.message_id, submitted_at=now
                    ))
                    lookups.append(CarrierMessageId(
                        channel_id=channel_id, carrier_message_id=r.message_id, tenant=tenant, schema_name=schema,
                        message_id=m.pk, part=r.part,
                    ))
                    carrier_ids.append(r.message_id)
                detail = "" if len(ok) == expected else f"{expected - len(ok)} of {expected} parts refused"
                events.append(services.transition(
                    message=m, to_status=S.SUBMITTED, at=now, save=False, detail=detail, submitted_at=now,
                    channel_id=channel_id,
                ))
                if m.hold_id:
                    captures.append(Capture(hold_id=m.hold_id, carrier_message_id=ok[0].message_id, submitted_at=now))
                submitted.append(m)
            elif any(r.transient for r in results) and m.submit_attempts < settings.DELIVERY_MAX_SUBMIT_ATTEMPTS:
                retry.append(m)
            else:
                code = next((r.command_status for r in results if r.command_status), 0)
                events.append(services.transition(
                    message=m, to_status=S.FAILED, at=now, save=False, detail=f"submit refused 0x{code:08x}",
                    error_code=f"0x{code:08x}", reason="submit_refused",
                ))
                failed.append(m)
        services.update_by_value(
            Message, submitted + failed, ["status", "status_at", "submitted_at", "channel_id", "error_code", "reason"]
        )
        StatusEvent.objects.bulk_create([e for e in events if e])
        MessagePart.objects.bulk_create(parts_rows, ignore_conflicts=True)
        # An SMSC reuses ids eventually (or after a restart): the newest submission owns the id.
        CarrierMessageId.objects.bulk_create(
            lookups, update_conflicts=True, unique_fields=["channel", "carrier_message_id"],
            update_fields=["tenant", "schema_name", "message_id", "part", "created_at"],
        )
        if captures:
            capture_holds(captures=captures, idempotency_key=_hash_key(f"capture:{schema}:", [c.hold_id for c in captures]))
        if failed:
            services.release_messages_holds(messages=failed, key_prefix="refused", reason="submit refused")
            for m in failed:
                services.enqueue_status_callback(tenant=tenant, message=m)
        if retry:
            retry_elsewhere(tenant=tenant, messages=retry, token=None, reason="transient submit error")
        if carrier_ids:
            transaction.on_commit(lambda: _apply_pending_after_commit(carrier_ids))
    return {"submitted": len(submitted), "failed": len(failed), "retried": len(retry)}


def _apply_pending_after_commit(carrier_ids: list[str]) -> None:
    from .inbound import apply_pending_receipts

    apply_pending_receipts(carrier_ids=carrier_ids)


def retry_elsewhere(*, tenant: Tenant, messages: list[Message], token: str | None, reason: str) -> None:
    """Back to queued on the next channel that has not been tried (failover, R-DLV-2); when all
    were tried, on the first one again after a back-off. Too many attempts → failed + release."""
    if not messages:
        return
    now = timezone.now()
    table = RoutingTable.load(at=now)
    jobs: dict[tuple[int, int], list[int]] = defaultdict(list)
    give_up: list[Message] = []
    with transaction.atomic():
        locked = Message.objects.select_for_update().filter(
            pk__in=[m.pk for m in messages], status__in=[S.SUBMITTING, S.UNKNOWN_SUBMISSION]
        )
        if token:
            locked = locked.filter(claim_token=token)
        for m in locked:
            if m.submit_attempts >= settings.DELIVERY_MAX_SUBMIT_ATTEMPTS:
                services.transition(message=m, to_status=S.FAILED, detail=reason, reason="submit_failed")
                give_up.append(m)
                continue
            tried = frozenset(m.tried_channels)
            fresh, _ = table.channels_for(
                message_type=m.message_type, country=m.country, carrier=m.carrier, province=m.province, exclude=tried
            )
            if fresh:
                channel_id, delay = fresh[0], 0
            else:
                again, _ = table.channels_for(
                    message_type=m.message_type, country=m.country, carrier=m.carrier, province=m.province
                )
                channel_id = again[0] if again else m.channel_id
                delay = min(settings.DELIVERY_RETRY_BACKOFF_MS * 2 ** (m.submit_attempts - 1), 60_000)
            services.transition(message=m, to_status=S.QUEUED, detail=reason[:200], channel_id=channel_id)
            jobs[(channel_id, delay)].append(m.pk)
        if give_up:
            services.release_messages_holds(messages=give_up, key_prefix="giveup", reason=reason[:200])
            for m in give_up:
                services.enqueue_status_callback(tenant=tenant, message=m)
        planned = [(services.ChannelJob(channel_id=c, tenant_id=tenant.pk, message_ids=ids), d) for (c, d), ids in jobs.items()]
        transaction.on_commit(lambda: [services.send_channel_jobs([job], delay_ms=d or None) for job, d in planned])


# --- sweeps (periodic) ------------------------------------------------------------------------


def delivery_tenants(*, days: int = 5) -> list[Tenant]:
    """Tenants that sent recently: the only schemas the sweeps need to visit."""
    since = timezone.now() - timedelta(days=days)
    ids = OutboxEntry.objects.filter(created_at__gte=since).values_list("tenant_id", flat=True).distinct()
    return list(Tenant.objects.filter(pk__in=list(ids)))


def mark_stale_submissions(*, now: datetime | None = None) -> int:
    """`submitting` rows whose sender died become unknown_submission (never blindly resent)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.DELIVERY_SUBMITTING_STALE_SECONDS)
    count = 0
    for tenant in delivery_tenants():
        with tenant_context(tenant), transaction.atomic():
            for m in Message.objects.select_for_update(skip_locked=True).filter(status=S.SUBMITTING, submitting_at__lt=cutoff):
                services.transition(message=m, to_status=S.UNKNOWN_SUBMISSION, at=now, detail="sender vanished")
                count += 1
    return count


def reconcile_unknown_submissions(*, now: datetime | None = None) -> dict:
    """Resolve unknown submissions: a receipt nobody claimed whose sender is our recipient and
    whose destination is our source address proves the SMSC took the message (→ submitted,
    captured, and the receipt applied); no such receipt within DELIVERY_RECONCILE_SECONDS →
    it was not taken (→ queued again)."""
    from billing.services import Capture, capture_holds

    from .inbound import apply_pending_receipts
    from .models import PendingReceipt

    now = now or timezone.now()
    found = requeued = 0
    for tenant in delivery_tenants():
        with tenant_context(tenant):
            with transaction.atomic():
                unknown = list(
                    Message.objects.select_for_update(skip_locked=True).filter(status=S.UNKNOWN_SUBMISSION).order_by("submitting_at")
                )
                if not unknown:
                    continue
                receipts = list(
                    PendingReceipt.objects.select_for_update(skip_locked=True).filter(
                        applied_at__isnull=True, source_addr__in=[m.recipient.lstrip("+") for m in unknown],
                        received_at__gte=min(m.submitting_at for m in unknown),
                    ).order_by("received_at")
                )
                used: set[int] = set()
                captures, lookups, matched_ids = [], [], []
                to_requeue = []
                for m in unknown:
                    match = next(
                        (r for r in receipts if r.pk not in used and r.source_addr == m.recipient.lstrip("+")
                         and r.received_at >= m.submitting_at),
                        None,
                    )
                    if match is not None:
                        used.add(match.pk)
                        MessagePart.objects.get_or_create(
                            message=m, part=1, defaults={"parts": 1, "carrier_message_id": match.carrier_message_id, "submitted_at": m.submitting_at}
                        )
                        lookups.append(CarrierMessageId(
                            channel_id=match.channel_id or m.channel_id, carrier_message_id=match.carrier_message_id,
                            tenant=tenant, schema_name=tenant.schema_name, message_id=m.pk, part=1,
                        ))
                        services.transition(message=m, to_status=S.SUBMITTED, at=now, detail="reconciled from receipt",
                                            submitted_at=m.submitting_at)
                        if m.hold_id:
                            captures.append(Capture(hold_id=m.hold_id, carrier_message_id=match.carrier_message_id,
                                                    submitted_at=m.submitting_at))
                        matched_ids.append(match.carrier_message_id)
                        found += 1
                    elif m.status_at < now - timedelta(seconds=settings.DELIVERY_RECONCILE_SECONDS):
                        to_requeue.append(m)
                CarrierMessageId.objects.bulk_create(lookups, ignore_conflicts=True)
                if captures:
                    capture_holds(captures=captures, idempotency_key=_hash_key("reconcile:", [c.hold_id for c in captures]))
                requeued += len(to_requeue)
                if to_requeue:
                    retry_elsewhere(tenant=tenant, messages=to_requeue, token=None, reason="unconfirmed submission")
            if matched_ids:
                apply_pending_receipts(carrier_ids=matched_ids)
    return {"reconciled": found, "requeued": requeued}


def expire_receipts(*, now: datetime | None = None) -> int:
    """No receipt within DELIVERY_RECEIPT_TIMEOUT_HOURS (72 h) → unknown (R-DLV-4)."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.DELIVERY_RECEIPT_TIMEOUT_HOURS)
    count = 0
    for tenant in delivery_tenants(days=settings.DELIVERY_RECEIPT_TIMEOUT_HOURS // 24 + 3):
        with tenant_context(tenant), transaction.atomic():
            for m in Message.objects.select_for_update(skip_locked=True).filter(status=S.SUBMITTED, submitted_at__lt=cutoff):
                services.transition(message=m, to_status=S.UNKNOWN, at=now, detail="no receipt in time")
                services.enqueue_status_callback(tenant=tenant, message=m)
                count += 1
    return count
