"""R-DLV-3: the send job: claimed messages submitted over a pooled SMPP session (delivery/smpp/pool.py),
and their results applied.

Never twice: a sender first *claims* its messages (queued → submitting, with a fresh claim token)
in a committed transaction, then submits, then records the results (submitted + capture, or
retry/failover, or failed + release) in a second transaction. A sender that dies in between
leaves `submitting` rows; `mark_stale_submissions` turns them into `unknown_submission`, which
`reconcile_unknown_submissions` (delivery/sweeps.py) resolves from receipts (see docs/delivery.md) instead of
submitting them blindly again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from smsplatform import metrics
from smsplatform.db import insert_rows, load_only, tenant_scope
from tenants.models import Tenant

from . import callbacks, charges, outbox, statuses
from .bulk import insert_status_events, update_grouped
from .channels import mark_channel_down, mark_channel_up
from .charges import hold_key, settle_holds
from .inbound import apply_job_receipts, settle_at_submit
from .models import CarrierMessageId, Channel, Message, MessagePart, MessageStatus, RecentRecipient, TenantNumber
from .routing import RoutingTable
from .smpp.pool import BIND_REFUSED_DOWN_SECONDS, BindsBusy, ChannelSession, SessionRegistry
from .smpp.results import failure_reason

log = logging.getLogger(__name__)
S = MessageStatus

# --- the per-process bind pool ----------------------------------------------------------------


# --- claiming ----------------------------------------------------------------------------------


CLAIM_FIELDS = (
    "id",
    "status",
    "status_at",
    "recipient",
    "content",
    "submit_attempts",
    "segments",
    "concat_ref",
    # what the send-time gate reads (compliance.services.send_time_verdicts)
    "signature_id",
    "template_id",
    "template_version",
    "country",
    "hold_id",
)
#: a message in its destination's quiet hours is looked at again after this long
QUIET_HOURS_RECHECK_MS = 5 * 60 * 1000
#: what recording a submit result reads (the failure path's callbacks included)
RESULT_FIELDS = (
    *callbacks.STATUS_CALLBACK_FIELDS,
    "claim_token",
    "submit_attempts",
    "hold_id",
    "message_type",
    "country",
    "carrier",
    "province",
    "tried_channels",
    "channel_id",
)


def accepted_parts(message_ids: list[int]) -> dict[int, set[int]]:
    """{message id: part numbers the carrier already accepted} (MessagePart rows)."""
    found: dict[int, set[int]] = defaultdict(set)
    if message_ids:
        for message_id, part in MessagePart.objects.filter(message_id__in=message_ids).values_list(
            "message_id", "part"
        ):
            found[message_id].add(part)
    return found


def claim_messages(
    *, channel_id: int, message_ids: list[int], token: str, tenant: Tenant | None = None
) -> list[Message]:
    """queued → submitting with a claim token, committed before anything is sent. The messages
    come back with CLAIM_FIELDS loaded only, and for long messages `accepted` (the parts the
    carrier took on an earlier claim: never sent again) and a fixed `concat_ref`.

    With `tenant`, the gate is applied again first (issue 10: suspension, revoked filings,
    opt-outs and blocks since acceptance, quiet hours now): a message that may no longer go is
    cancelled with the reason and its hold released; one in quiet hours stays queued for later."""
    now = timezone.now()
    with transaction.atomic():
        messages = load_only(  # what the sender needs: loading whole rows was a third of a claim
            Message.objects.select_for_update(skip_locked=True)
            .filter(pk__any=message_ids, status=S.QUEUED, channel_id=channel_id)
            .order_by("pk"),
            CLAIM_FIELDS,
        )
        if tenant is not None and messages:
            messages = _gate_at_send_time(tenant=tenant, channel_id=channel_id, messages=messages, now=now)
        events = [
            statuses.transition(
                message=m,
                to_status=S.SUBMITTING,
                at=now,
                save=False,
                claim_token=token,
                submitting_at=now,
                submit_attempts=m.submit_attempts + 1,
            )
            for m in messages
        ]
        # One UPDATE for the whole claim (the same values for every row).
        Message.objects.filter(pk__any=[m.pk for m in messages]).update(
            status=S.SUBMITTING,
            status_at=now,
            claim_token=token,
            submitting_at=now,
            submit_attempts=F("submit_attempts") + 1,
            unknown_parts=[],  # a new round: only its own lost answers count
        )
        insert_status_events(events)
        long = [m for m in messages if m.segments > 1]
        for m in messages:
            m.accepted = set()
        if long:
            _fix_concat_refs([m for m in long if m.concat_ref is None])
            earlier = accepted_parts([m.pk for m in long if m.submit_attempts > 1])
            for m in long:
                m.accepted = earlier.get(m.pk, set())
    return messages


def _gate_at_send_time(*, tenant: Tenant, channel_id: int, messages: list[Message], now: datetime) -> list[Message]:
    """The messages that may go now (see claim_messages); the others are settled here."""
    from compliance.services import send_time_verdicts

    verdicts = send_time_verdicts(tenant=tenant, messages=messages, now=now)
    if not verdicts:
        return messages
    waiting = [m.pk for m in messages if m.pk in verdicts and verdicts[m.pk].wait]
    refused = [m.pk for m in messages if m.pk in verdicts and not verdicts[m.pk].wait]
    if refused:
        rows = list(Message.objects.filter(pk__in=refused))  # locked above; callbacks read whole rows
        for m in rows:
            verdict = verdicts[m.pk]
            statuses.transition(
                message=m, to_status=S.CANCELLED, at=now, detail=verdict.detail, reason=verdict.reason[:60]
            )
        charges.release_messages_holds(messages=rows, key_prefix="sendtime", reason="refused at send time")
        callbacks.enqueue_status_callbacks(tenant=tenant, messages=rows)
    if waiting:
        job = outbox.ChannelJob(channel_id=channel_id, tenant_id=tenant.pk, message_ids=waiting)
        transaction.on_commit(lambda: outbox.send_channel_jobs([job], delay_ms=QUIET_HOURS_RECHECK_MS))
    return [m for m in messages if m.pk not in verdicts]


def _fix_concat_refs(messages: list[Message]) -> None:
    """Give long messages their UDH reference from the platform-wide cycle (issue 10: references
    counted per bind let two binds give one handset the same one)."""
    if not messages:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Message._meta.db_table} SET concat_ref = nextval('public.delivery_concat_ref') "
            "WHERE id = ANY(%s) AND concat_ref IS NULL RETURNING id, concat_ref",
            [[m.pk for m in messages]],
        )
        refs = dict(cursor.fetchall())
    for m in messages:
        m.concat_ref = refs.get(m.pk, m.concat_ref)


def source_address(*, channel: Channel, tenant: Tenant) -> str:
    ext = TenantNumber.objects.filter(tenant=tenant).order_by("pk").values_list("extension", flat=True).first()
    return f"{channel.source_addr}{ext or ''}"


# --- one channel job ---------------------------------------------------------------------------


def send_messages(*, channel_id: int, tenant_id: int, message_ids: list[int]) -> dict:
    """Take a pooled bind, claim and submit (in slices of about a second of sending when the
    channel has a TPS limit), wait for the responses, record the results.

    The bind is taken before anything is claimed, and with a TPS limit only the next slice is
    claimed: a message is `submitting` only shortly before it goes out, so a crash leaves few
    claimed-but-never-sent messages waiting for reconciliation (issue 7: a job of 100 claimed,
    then waiting for the bind and the TPS limit, made a killed worker strand all of them)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    # One search_path for the whole job (public tables are on it too: no SET per step).
    with tenant_scope(tenant):
        return _send_messages(tenant=tenant, channel_id=channel_id, message_ids=message_ids)


def _send_messages(*, tenant: Tenant, channel_id: int, message_ids: list[int]) -> dict:
    from .smpp.results import SmppBindError, SmppError

    channel = Channel.objects.filter(pk=channel_id).first()
    token = uuid.uuid4().hex

    # send_messages runs all of this under the tenant's search_path (tenant_scope)
    def claim(ids: list[int]) -> list[Message]:
        return claim_messages(channel_id=channel_id, message_ids=ids, token=token, tenant=tenant)

    def give_back(messages: list[Message], reason: str) -> None:
        # Channel conditions (disabled, binds busy, bind refused): nothing was sent, so the claim
        # does not count as an attempt (issue 20: a refused bind used one of five per message).
        retry_elsewhere(tenant=tenant, messages=messages, token=token, reason=reason, refund_attempt=True)

    if channel is None or not channel.enabled:
        claimed = claim(message_ids)
        give_back(claimed, "channel disabled")
        return {"claimed": len(claimed), "failed_over": len(claimed)}
    source = source_address(channel=channel, tenant=tenant)
    try:
        holder = SessionRegistry.acquire(channel)
    except BindsBusy as exc:
        claimed = claim(message_ids)
        give_back(claimed, str(exc))
        return {"claimed": len(claimed), "failed_over": len(claimed)}
    except (SmppError, OSError) as exc:
        # A channel condition, never a message attempt (issue 20): the messages wait for the
        # channel (or another route) within their validity period.
        what = "bind_refused" if isinstance(exc, SmppBindError) else "connect_failed"
        # Briefly for a refusal (the budget said a bind was free: another user of the account, or
        # leases of a process that just died); the usual time for a channel that does not answer.
        mark_channel_down(
            channel_id=channel_id,
            error=f"{what}: {exc}",
            seconds=BIND_REFUSED_DOWN_SECONDS if isinstance(exc, SmppBindError) else None,
        )
        claimed = claim(message_ids)
        give_back(claimed, f"{what}: {exc}")
        return {"claimed": len(claimed), "failed_over": len(claimed)}
    schema = tenant.schema_name
    step = len(message_ids)
    if channel.tps_limit:
        step = max(int(channel.tps_limit), channel.window_size, 1)
    claimed: list[Message] = []
    broken = None
    try:
        mark_channel_up(channel_id=channel_id)
        receipts_before = holder.session.stats["receipts"]
        for offset in range(0, len(message_ids), step):
            batch = claim(message_ids[offset : offset + step])
            claimed += batch
            for m in batch:
                missing = None
                if m.accepted:  # resend only what the carrier has not taken, under the same reference
                    missing = frozenset(range(1, m.segments + 1)) - m.accepted
                try:
                    holder.session.submit(
                        ref=f"{schema}:{m.pk}:{token}",
                        source=source,
                        destination=m.recipient.lstrip("+"),
                        text=m.content,
                        reference=m.concat_ref,
                        only_parts=missing,
                    )
                except (SmppError, OSError) as exc:
                    # The session reported every part it had taken (answered, or transient); messages
                    # after this one were never handed over.
                    broken = exc
                    break
            if broken is not None:
                # the slices not claimed yet: claimed now and given back below with the unsent
                claimed += claim(message_ids[offset + step :])
                break
        if broken is None:
            try:
                holder.session.drain(settings.DELIVERY_SUBMIT_TIMEOUT_SECONDS)
                if holder.session.outstanding:
                    # Still unanswered: the link hangs. Its parts become unknown (settled by
                    # evidence, never requeued by a late timeout) and the bind is not reused.
                    holder.session.abandon(f"{holder.session.outstanding} submits unanswered")
                    broken = SmppError("submit responses overdue")
                else:
                    _linger(holder, receipts_before=receipts_before)
                    holder.session.answer_inbound()
            except (SmppError, OSError) as exc:
                broken = exc
        results = holder.take_results()  # still ours: the idle poller cannot take them first
        receipt_ids, receipts = holder.take_receipts()
    finally:
        if broken is not None:
            log.warning("channel %s session lost: %s", channel_id, broken)
            SessionRegistry.discard(holder)
        else:
            SessionRegistry.release(holder)
    if not claimed:  # a job sent twice: nothing to claim; what the bind read meanwhile still counts
        outcome = apply_submit_results(
            channel_id=channel_id, results=results, receipt_ids=receipt_ids, receipts=receipts
        )
        return {**outcome, "claimed": 0, "receipts": len(receipt_ids)}
    reported = {r.ref.split(":")[1] for r in results if r.ref.count(":") == 2}
    outcome = apply_submit_results(channel_id=channel_id, results=results, receipt_ids=receipt_ids, receipts=receipts)
    leftover = set(
        Message.objects.filter(pk__any=[m.pk for m in claimed], status=S.SUBMITTING, claim_token=token).values_list(
            "pk", flat=True
        )
    )
    # No result at all after a broken session: never handed to the SMSC, safe to send again.
    unsent = [m for m in claimed if m.pk in leftover and broken is not None and str(m.pk) not in reported]
    retry_elsewhere(tenant=tenant, messages=unsent, token=token, reason=f"not_sent: {broken}")
    # Handed over but no (complete) answer yet: we cannot know whether the SMSC took them.
    unsent_ids = {m.pk for m in unsent}
    pending = []
    if len(leftover) > len(unsent):
        with transaction.atomic():
            pending = list(
                Message.objects.select_for_update().filter(
                    pk__in=[pk for pk in leftover if pk not in unsent_ids],
                    status=S.SUBMITTING,
                    claim_token=token,
                )
            )
            for m in pending:
                statuses.transition(message=m, to_status=S.UNKNOWN_SUBMISSION, detail="no submit response")
    outcome.update(claimed=len(claimed), unsent=len(unsent), unknown=len(pending), receipts=len(receipt_ids))
    return outcome


def _linger(holder: ChannelSession, *, receipts_before: int) -> None:
    """Read a little longer: receipts of what we just sent often follow right away, and this
    bind is only read while a job runs (between jobs the idle poller reads it every 0.2 s). Stops
    as soon as as many receipts came as parts were accepted: no fixed wait per job."""
    linger = settings.DELIVERY_RECEIPT_LINGER_SECONDS
    if linger <= 0:
        return
    session = holder.session
    accepted = sum(1 for r in holder.results if r.ok)
    deadline = time.monotonic() + linger
    while session.stats["receipts"] - receipts_before < accepted:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        session.poll(min(remaining, 0.05))


# --- recording results -------------------------------------------------------------------------


def apply_submit_results(
    *, channel_id: int, results: list, receipt_ids: list[str] | None = None, receipts: list | None = None
) -> dict:
    """Record SubmitResults (any tenant, any claim): carrier ids + capture, failover, or failure.
    `receipts` (inbound.StoredReceipt rows the caller read on this channel's bind meanwhile) that
    match a carrier id recorded here are applied in the same transaction, from memory
    (inbound.apply_job_receipts). After commit, the parked receipts of the other accepted ids —
    and the rest of `receipt_ids` — are applied in one batch."""
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
    carrier_ids: list[str] = list(receipt_ids or ())
    for schema, items in per_schema.items():
        tenant = Tenant.objects.filter(schema_name=schema).first()
        if tenant is None:
            continue
        with tenant_scope(tenant):
            outcome = _apply_for_tenant(
                tenant=tenant, channel_id=channel_id, items=items, carrier_ids=carrier_ids, receipts=receipts or []
            )
            for key, value in outcome.items():
                totals[key] += value
    if carrier_ids:
        # After commit (the receipts' own appliers could not see our lookup rows before it).
        transaction.on_commit(lambda: _apply_pending_after_commit(carrier_ids))
    metrics.count_submit_results(channel_id, results, totals)
    return dict(totals)


def _apply_for_tenant(
    *, tenant: Tenant, channel_id: int, items: dict[int, tuple[str, list]], carrier_ids: list[str], receipts: list
) -> dict:
    """One tenant's results in one transaction; the accepted carrier ids are added to `carrier_ids`,
    except those whose receipt (among `receipts`) was applied here already.

    Per part (issue 10): an accepted part is recorded at once (carrier id, lookup) and never sent
    again; a message is `submitted` only when every part was accepted. Parts whose answer was lost
    make it `unknown_submission` (settled by evidence); parts refused with a transient error are
    resent alone, under the same reference; a permanent refusal ends the message, and only the
    parts the carrier accepted are charged (R-BIL-2/8)."""
    from billing.services import Capture, capture_holds

    now = timezone.now()
    schema = connection.schema_name
    submitted: list[Message] = []
    failed: list[Message] = []
    retry: list[Message] = []
    unknown: list[Message] = []
    with transaction.atomic():
        messages = load_only(
            Message.objects.select_for_update().filter(
                pk__any=list(items), status__in=[S.SUBMITTING, S.UNKNOWN_SUBMISSION]
            ),
            RESULT_FIELDS,
        )
        earlier = accepted_parts([m.pk for m in messages if m.segments > 1])
        parts_rows, lookups, captures, events, recent = [], [], [], [], []
        recorded: dict[str, tuple[int, int]] = {}  # carrier id → (message id, part), this transaction's
        accepted_count: dict[int, int] = {}
        for m in messages:
            token, results = items[m.pk]
            if m.claim_token != token:
                continue  # a result of an older claim: that claim was already resolved
            total = results[0].parts
            have = earlier.get(m.pk, set())
            ok = sorted((r for r in results if r.ok and r.message_id and r.part not in have), key=lambda r: r.part)
            got = have | {r.part for r in ok}
            if len(got | {r.part for r in results}) < total:
                continue  # incomplete: left for the caller (unknown_submission) or a later poll
            if ok:
                recent.append((channel_id, m.recipient.lstrip("+"), tenant.pk, now))
            for r in ok:
                raw = (r.raw_message_id or r.message_id)[:80]  # issue 21: query_sm asks with it
                parts_rows.append((m.pk, r.part, r.parts, r.message_id, raw, now, S.SUBMITTED, "", "", None))
                lookups.append((channel_id, r.message_id, tenant.pk, schema, m.pk, r.part, now))
                recorded[r.message_id] = (m.pk, r.part)
            open_results = [r for r in results if r.part not in got]
            accepted_count[m.pk] = len(got)
            if len(got) == total:
                # R-BIL-2/8: the carrier accepted every part: capture with carrier id + submit time.
                events.append(
                    statuses.transition(
                        message=m, to_status=S.SUBMITTED, at=now, save=False, submitted_at=now, channel_id=channel_id
                    )
                )
                if m.hold_id:
                    first = ok[0].message_id if ok else ""
                    captures.append(Capture(hold_id=m.hold_id, carrier_message_id=first, submitted_at=now))
                submitted.append(m)
            elif any(r.outcome_unknown for r in open_results):
                lost = sorted({r.part for r in open_results if r.outcome_unknown})
                if m.status != S.UNKNOWN_SUBMISSION:
                    events.append(
                        statuses.transition(
                            message=m,
                            to_status=S.UNKNOWN_SUBMISSION,
                            at=now,
                            save=False,
                            detail=f"{len(lost)} of {total} parts sent without an answer (link_lost)",
                            channel_id=channel_id,
                        )
                    )
                    m.unknown_parts = lost
                    unknown.append(m)
            elif any(r.transient for r in open_results):
                m.retry_reason = next(failure_reason(r.command_status) for r in open_results if r.transient)
                m.retry_transient = True
                retry.append(m)
            elif (
                not got
                and m.submit_attempts < settings.DELIVERY_MAX_SUBMIT_ATTEMPTS
                and _untried_channel(m, channel_id)
            ):
                m.retry_reason, m.retry_transient = "refused by channel", False
                retry.append(m)  # this channel refused it: the next route may take it (failover)
            else:
                code = next((r.command_status for r in open_results if r.command_status), 0)
                detail = failure_reason(code)
                if got:
                    detail = f"{detail}; {len(got)} of {total} parts accepted and charged"
                events.append(
                    statuses.transition(
                        message=m,
                        to_status=S.FAILED,
                        at=now,
                        save=False,
                        detail=detail,
                        error_code=f"0x{code:08x}" if code >= 0 else "",
                        reason="partly_refused" if got else "submit_refused",
                    )
                )
                failed.append(m)
        settled, applied = [], set()
        if submitted and receipts:
            # receipts read during the job for messages it has just submitted: final at once
            parts_rows, settled, settle_events, applied = settle_at_submit(
                tenant=tenant,
                channel_id=channel_id,
                messages=submitted,
                parts_rows=parts_rows,
                receipts=receipts,
                now=now,
            )
            events += settle_events
            receipts = [r for r in receipts if r.carrier_message_id not in applied]
        settled_ids = {m.pk for m in settled}
        if len(submitted) > len(settled):  # the same values for every row: one UPDATE
            Message.objects.filter(pk__any=[m.pk for m in submitted if m.pk not in settled_ids]).update(
                status=S.SUBMITTED, status_at=now, submitted_at=now, channel_id=channel_id
            )
        update_grouped(Message, settled, ["status", "status_at", "submitted_at", "done_at", "error_code", "channel_id"])
        for parts_lost in {tuple(m.unknown_parts) for m in unknown}:
            Message.objects.filter(pk__in=[m.pk for m in unknown if tuple(m.unknown_parts) == parts_lost]).update(
                status=S.UNKNOWN_SUBMISSION, status_at=now, channel_id=channel_id, unknown_parts=list(parts_lost)
            )
        Message.objects.bulk_update(failed, ["status", "status_at", "error_code", "reason"])
        insert_status_events(events)
        insert_rows(
            MessagePart,
            [
                "message",
                "part",
                "parts",
                "carrier_message_id",
                "smsc_message_id",
                "submitted_at",
                "status",
                "stat",
                "err",
                "done_at",
            ],
            parts_rows,
            on_conflict="ON CONFLICT DO NOTHING",
        )
        # An SMSC reuses ids eventually (or after a restart): the newest submission owns the id.
        insert_rows(
            CarrierMessageId,
            ["channel", "carrier_message_id", "tenant", "schema_name", "message_id", "part", "created_at"],
            lookups,
            on_conflict="ON CONFLICT (channel_id, carrier_message_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, "
            "schema_name = EXCLUDED.schema_name, message_id = EXCLUDED.message_id, part = EXCLUDED.part, "
            "created_at = EXCLUDED.created_at",
        )
        # Who last sent to each number on this account: a reply to the bare source address goes there.
        insert_rows(
            RecentRecipient,
            ["channel", "recipient", "tenant", "sent_at"],
            list({(row[0], row[1]): row for row in recent}.values()),
            on_conflict="ON CONFLICT (channel_id, recipient) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, "
            "sent_at = EXCLUDED.sent_at",
        )
        callbacks.enqueue_status_callbacks(tenant=tenant, messages=failed)
        for reason in {m.retry_reason for m in retry}:
            group = [m for m in retry if m.retry_reason == reason]
            retry_elsewhere(
                tenant=tenant,
                messages=group,
                token=None,
                reason=reason,
                transient=group[0].retry_transient,
                pinned={m.pk for m in group if accepted_count.get(m.pk)},
            )
        if receipts and recorded:
            applied |= apply_job_receipts(tenant=tenant, channel_id=channel_id, receipts=receipts, lookups=recorded)
        if applied:
            carrier_ids[:] = [cid for cid in carrier_ids if cid not in applied]
        carrier_ids.extend(cid for cid in recorded if cid not in applied)
        # Money last: the tenant's account row stays locked from here to the commit, and every
        # job of the tenant's channels waits for it (issue 16: taken mid-way, it was held while
        # the receipts were applied; 39 ms average wait per job at 8 jobs in parallel).
        if captures:
            capture_holds(
                captures=captures, idempotency_key=hold_key(f"capture:{schema}:", [c.hold_id for c in captures])
            )
        if failed:
            settle_holds(messages=failed, accepted=accepted_count, key_prefix="refused", reason="submit refused")
    return {"submitted": len(submitted), "failed": len(failed), "retried": len(retry), "unknown": len(unknown)}


_tables = threading.local()


def _untried_channel(message: Message, channel_id: int) -> bool:
    """Whether a route offers a channel this message has not been refused by yet."""
    table = getattr(_tables, "table", None)
    if table is None or table[0] < timezone.now() - timedelta(seconds=5):
        _tables.table = table = (timezone.now(), RoutingTable.load())
    fresh, _ = table[1].channels_for(
        message_type=message.message_type,
        country=message.country,
        carrier=message.carrier,
        province=message.province,
        exclude=frozenset({*message.tried_channels, channel_id}),
    )
    return bool(fresh)


def _apply_pending_after_commit(carrier_ids: list[str]) -> None:
    from .inbound import apply_pending_receipts

    apply_pending_receipts(carrier_ids=carrier_ids)


def validity_deadline(message: Message) -> datetime:
    """Until when a message may wait for a channel that takes it (per message type)."""
    seconds = settings.DELIVERY_VALIDITY_SECONDS.get(
        message.message_type, settings.DELIVERY_VALIDITY_SECONDS["default"]
    )
    start = max(filter(None, (message.created_at, message.send_at)))
    return start + timedelta(seconds=seconds)


def retry_elsewhere(
    *,
    tenant: Tenant,
    messages: list[Message],
    token: str | None,
    reason: str,
    transient: bool = True,
    pinned: set[int] | frozenset[int] = frozenset(),
    refund_attempt: bool = False,
) -> None:
    """Back to queued on the next channel that has not been tried (failover, R-DLV-2); when all
    were tried, on the first one again after a back-off, and never before a channel marked down
    is due up again. A message some of whose parts the carrier already took (`pinned`) stays on
    its channel: the rest goes under the same reference.

    Outages, throttling and bind refusals (`transient`) do not use the message's attempts: it
    waits until its validity period ends (DELIVERY_VALIDITY_SECONDS per type), then fails with
    `validity_expired`. Permanent refusals fail after DELIVERY_MAX_SUBMIT_ATTEMPTS.
    `refund_attempt`: the claim that brought them here sent nothing (a channel condition), so
    its attempt is taken back."""
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
        down = dict(
            Channel.objects.filter(down_until__gt=now).values_list("pk", "down_until")
        )  # few rows: channels in trouble
        for m in locked:
            if refund_attempt and m.submit_attempts > 0:
                m.submit_attempts -= 1
            expired = now >= validity_deadline(m)
            if expired or (not transient and m.submit_attempts >= settings.DELIVERY_MAX_SUBMIT_ATTEMPTS):
                statuses.transition(
                    message=m,
                    to_status=S.FAILED,
                    detail=f"{reason} (validity period over)"[:200] if expired else reason[:200],
                    reason="validity_expired" if expired else "submit_failed",
                )
                give_up.append(m)
                continue
            tried = frozenset({*m.tried_channels, m.channel_id})
            m.tried_channels = sorted(tried)
            fresh: list[int] = []
            if m.pk not in pinned:
                fresh, _ = table.channels_for(
                    message_type=m.message_type,
                    country=m.country,
                    carrier=m.carrier,
                    province=m.province,
                    exclude=tried,
                )
            delay = 0
            if fresh:
                channel_id = fresh[0]
            else:
                again: list[int] = []
                if m.pk not in pinned:
                    again, _ = table.channels_for(
                        message_type=m.message_type, country=m.country, carrier=m.carrier, province=m.province
                    )
                channel_id = again[0] if again else m.channel_id
                attempt = max(m.submit_attempts, 1)
                delay = min(settings.DELIVERY_RETRY_BACKOFF_MS * 2 ** min(attempt - 1, 10), 60_000)
            if channel_id in down:  # not before the channel is due up again
                delay = max(delay, int((down[channel_id] - now).total_seconds() * 1000))
            statuses.transition(
                message=m,
                to_status=S.QUEUED,
                detail=reason[:200],
                channel_id=channel_id,
                tried_channels=m.tried_channels,
                **({"submit_attempts": m.submit_attempts} if refund_attempt else {}),
            )
            jobs[(channel_id, delay)].append(m.pk)
        if give_up:
            settle_holds(
                messages=give_up,
                accepted={k: len(v) for k, v in accepted_parts([m.pk for m in give_up if m.segments > 1]).items()},
                key_prefix="giveup",
                reason=reason[:200],
            )
            callbacks.enqueue_status_callbacks(tenant=tenant, messages=give_up)
        planned = [
            (outbox.ChannelJob(channel_id=c, tenant_id=tenant.pk, message_ids=ids), d) for (c, d), ids in jobs.items()
        ]
        transaction.on_commit(lambda: [outbox.send_channel_jobs([job], delay_ms=d or None) for job, d in planned])


# --- sweeps (periodic) ------------------------------------------------------------------------
