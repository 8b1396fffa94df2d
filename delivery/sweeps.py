"""Housekeeping sweeps of delivery (periodic, delivery/schedule.py): stale submissions become\nunknown, unknown submissions are settled by evidence (R-DLV-3, issue 10) or by their message\ntype's policy, receipts overdue after 72 h make a message unknown (R-DLV-4), and working rows\nnobody needs any more are purged."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Tenant

from . import callbacks, statuses
from .charges import hold_key, settle_holds
from .models import CarrierMessageId, Channel, Message, MessagePart, MessageStatus, OutboxEntry
from .routing import channel_accounts
from .sender import accepted_parts, retry_elsewhere, source_address

S = MessageStatus


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
            for m in Message.objects.select_for_update(skip_locked=True).filter(
                status=S.SUBMITTING, submitting_at__lt=cutoff
            ):
                statuses.transition(message=m, to_status=S.UNKNOWN_SUBMISSION, at=now, detail="sender vanished")
                count += 1
    return count


def _unknown_policy(message: Message) -> tuple[str, int]:
    return settings.DELIVERY_UNKNOWN_POLICY.get(message.message_type, settings.DELIVERY_UNKNOWN_POLICY["default"])


def _unknown_window(message: Message) -> int:
    return _unknown_policy(message)[1]


def reconcile_unknown_submissions(*, now: datetime | None = None) -> dict:
    """Settle unknown submissions (sent, answer lost) by evidence, never by phone number alone.

    Evidence: stored receipts that no known carrier id of the account claims, from the same SMSC
    account, for this recipient, addressed to this tenant's source address, received after the
    submission, exactly as many as the message has unconfirmed parts, and no other unknown
    message of the tenant could own them. Such parts are recorded as accepted (→ submitted and
    captured once every part is). Without evidence within its message type's window
    (DELIVERY_UNKNOWN_POLICY), the unconfirmed parts are resent under the same reference
    ("resend") or the message fails with `unconfirmed_submission` ("fail").

    Issue 20 "delivered wins": messages that failed for want of such evidence (within the receipt
    timeout) are candidates too; evidence for every part they lack records those parts, and the
    receipts then deliver the message and capture its released hold (inbound.apply_outcomes)."""
    from billing.services import Capture, capture_holds

    from .inbound import apply_pending_receipts, receipt_owners
    from .models import PendingReceipt

    now = now or timezone.now()
    apply_pending_receipts()  # receipts of known ids first: what is left may be evidence
    accounts = channel_accounts()
    found = requeued = failed_count = late_count = 0
    late_since = now - timedelta(hours=settings.DELIVERY_RECEIPT_TIMEOUT_HOURS)
    for tenant in delivery_tenants():
        with tenant_context(tenant):
            matched_ids: list[str] = []
            with transaction.atomic():
                unknown = list(
                    Message.objects.select_for_update(skip_locked=True)
                    .filter(status=S.UNKNOWN_SUBMISSION)
                    .order_by("submitting_at")
                )
                failed_late = list(
                    Message.objects.select_for_update(skip_locked=True)
                    .filter(
                        # failed with parts whose answer was lost (those the carrier may hold)
                        Q(reason="unconfirmed_submission")
                        | (Q(reason__in=statuses.LATE_EVIDENCE_REASONS) & ~Q(unknown_parts=[])),
                        status=S.FAILED,
                        status_at__gte=late_since,
                        submitting_at__isnull=False,
                        channel_id__isnull=False,
                    )
                    .order_by("submitting_at")
                )
                if not unknown and not failed_late:
                    continue
                candidates = unknown + failed_late
                have = accepted_parts([m.pk for m in candidates])
                channels = {c.pk: c for c in Channel.objects.filter(pk__in={m.channel_id for m in candidates})}
                sources = {pk: source_address(channel=c, tenant=tenant) for pk, c in channels.items()}
                wanted = {accounts.get(pk) for pk in channels}
                account_channels = [pk for pk, acct in accounts.items() if acct in wanted]
                receipts = list(
                    PendingReceipt.objects.select_for_update(skip_locked=True)
                    .filter(
                        applied_at__isnull=True,
                        channel_id__in=account_channels,
                        source_addr__in=[m.recipient.lstrip("+") for m in candidates],
                        received_at__gte=min(m.submitting_at for m in candidates),
                    )
                    .order_by("received_at", "pk")
                )
                # what a known part owns (its exact id, or a variant of a part sent to the same
                # handset) is not evidence; a variant of another handset's part is (issue 16)
                owned = receipt_owners(receipts, accounts=accounts, variant_after=None)
                receipts = [r for r in receipts if r.pk not in owned]

                def key(recipient: str, channel_id: int | None, sources: dict = sources) -> tuple:
                    return (accounts.get(channel_id), recipient.lstrip("+"), sources.get(channel_id))

                owners: dict[tuple, int] = defaultdict(int)
                for m in candidates:
                    owners[key(m.recipient, m.channel_id)] += 1
                parts_rows, lookups, captures, to_resend, to_fail, settled_resend = [], [], [], [], [], []
                for m in candidates:
                    k = key(m.recipient, m.channel_id)
                    missing = sorted(set(range(1, max(m.segments, 1) + 1)) - have.get(m.pk, set()))
                    # the parts that may be at the SMSC: those whose answer was lost (the others were
                    # refused or never sent); a crashed sender's rows say nothing, so: every missing one
                    doubtful = [p for p in m.unknown_parts if p in missing] or missing
                    # one per carrier id: a receipt stored, then redelivered (its bind died before
                    # answering it) is one piece of evidence, not two
                    evidence = list(
                        {
                            r.carrier_message_id: r
                            for r in reversed(receipts)
                            if (accounts.get(r.channel_id), r.source_addr, r.destination_addr) == k
                            and r.received_at >= m.submitting_at
                        }.values()
                    )[::-1]
                    if m.status == S.FAILED:  # delivered wins only on evidence for every part it lacks
                        if not (evidence and owners[k] == 1 and len(evidence) == len(missing)):
                            continue
                        doubtful = missing
                    if evidence and owners[k] == 1 and len(evidence) <= len(doubtful):
                        # An SMSC takes one bind's PDUs in order: n receipts for m doubtful parts
                        # prove the first n sent; the others wait for their own evidence.
                        proven, still_doubtful = doubtful[: len(evidence)], doubtful[len(evidence) :]
                        for part, r in zip(proven, evidence, strict=True):
                            parts_rows.append(
                                MessagePart(
                                    message=m,
                                    part=part,
                                    parts=max(m.segments, 1),
                                    carrier_message_id=r.carrier_message_id,
                                    submitted_at=m.submitting_at,
                                )
                            )
                            lookups.append(
                                CarrierMessageId(
                                    channel_id=r.channel_id or m.channel_id,
                                    carrier_message_id=r.carrier_message_id,
                                    tenant=tenant,
                                    schema_name=tenant.schema_name,
                                    message_id=m.pk,
                                    part=part,
                                )
                            )
                            matched_ids.append(r.carrier_message_id)
                        have.setdefault(m.pk, set()).update(proven)
                        if m.status == S.FAILED:  # its receipts, applied below, deliver it
                            late_count += 1
                            continue
                        found += 1
                        if still_doubtful:
                            m.unknown_parts = still_doubtful
                            m.save(update_fields=["unknown_parts"])
                            if m.status_at < now - timedelta(seconds=_unknown_window(m)):
                                to_resend.append(m)
                            continue
                        if len(proven) < len(missing):  # the refused / unsent rest goes now, same reference
                            m.unknown_parts = []
                            m.save(update_fields=["unknown_parts"])
                            settled_resend.append(m)
                            continue
                        statuses.transition(
                            message=m,
                            to_status=S.SUBMITTED,
                            at=now,
                            detail="reconciled from receipt",
                            submitted_at=m.submitting_at,
                            unknown_parts=[],
                        )
                        if m.hold_id:
                            captures.append(
                                Capture(
                                    hold_id=m.hold_id,
                                    carrier_message_id=evidence[0].carrier_message_id,
                                    submitted_at=m.submitting_at,
                                )
                            )
                        continue
                    action, _ = _unknown_policy(m)
                    if m.status_at < now - timedelta(seconds=_unknown_window(m)):
                        (to_resend if action == "resend" else to_fail).append(m)
                MessagePart.objects.bulk_create(parts_rows, ignore_conflicts=True)
                CarrierMessageId.objects.bulk_create(lookups, ignore_conflicts=True)
                if captures:
                    capture_holds(
                        captures=captures, idempotency_key=hold_key("reconcile:", [c.hold_id for c in captures])
                    )
                for m in to_fail:
                    statuses.transition(
                        message=m,
                        to_status=S.FAILED,
                        at=now,
                        detail="no evidence the carrier took it within the window",
                        reason="unconfirmed_submission",
                    )
                if to_fail:
                    settle_holds(
                        messages=to_fail,
                        accepted={k: len(v) for k, v in have.items()},
                        key_prefix="unconfirmed",
                        reason="unconfirmed submission",
                    )
                    callbacks.enqueue_status_callbacks(tenant=tenant, messages=to_fail)
                failed_count += len(to_fail)
                requeued += len(to_resend)
                if settled_resend:  # their evidence parts are recorded above: the resend skips them
                    retry_elsewhere(
                        tenant=tenant,
                        messages=settled_resend,
                        token=None,
                        reason="the rest of a message settled by its receipt",
                        pinned={m.pk for m in settled_resend},
                    )
                if to_resend:
                    retry_elsewhere(
                        tenant=tenant,
                        messages=to_resend,
                        token=None,
                        reason="unconfirmed submission",
                        pinned={m.pk for m in to_resend if have.get(m.pk)},
                    )
            if matched_ids:
                apply_pending_receipts(carrier_ids=matched_ids)
    return {"reconciled": found, "requeued": requeued, "failed": failed_count, "delivered_late": late_count}


def expire_receipts(*, now: datetime | None = None) -> int:
    """No receipt within DELIVERY_RECEIPT_TIMEOUT_HOURS (72 h) → unknown (R-DLV-4)."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.DELIVERY_RECEIPT_TIMEOUT_HOURS)
    count = 0
    for tenant in delivery_tenants(days=settings.DELIVERY_RECEIPT_TIMEOUT_HOURS // 24 + 3):
        with tenant_context(tenant), transaction.atomic():
            expired = list(
                Message.objects.select_for_update(skip_locked=True).filter(status=S.SUBMITTED, submitted_at__lt=cutoff)
            )
            for m in expired:
                statuses.transition(message=m, to_status=S.UNKNOWN, at=now, detail="no receipt in time")
            callbacks.enqueue_status_callbacks(tenant=tenant, messages=expired)
            count += len(expired)
    return count


def purge_housekeeping(*, now: datetime | None = None) -> dict:
    """Drop working rows nobody needs any more (the send log itself is kept, R-AUD-1): applied
    receipts after a day, unmatched ones after twice the receipt timeout, carrier-id lookups and
    relayed outbox entries once no receipt or sweep can need them."""
    from .models import PendingReceipt

    now = now or timezone.now()
    keep = timedelta(hours=settings.DELIVERY_RECEIPT_TIMEOUT_HOURS)
    applied, _ = PendingReceipt.objects.filter(applied_at__lt=now - timedelta(days=1)).delete()
    unmatched, _ = PendingReceipt.objects.filter(applied_at__isnull=True, received_at__lt=now - 2 * keep).delete()
    lookups, _ = CarrierMessageId.objects.filter(created_at__lt=now - 2 * keep).delete()
    outbox, _ = OutboxEntry.objects.filter(relayed_at__lt=now - keep - timedelta(days=3)).delete()
    return {"receipts": applied + unmatched, "lookups": lookups, "outbox": outbox}
