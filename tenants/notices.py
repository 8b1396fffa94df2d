"""Notices to tenants (R-DLV-7): one function, `notify`, that every duty calls.

A notice is written once (Chinese and English text, machine-readable data) and delivered on three
channels, each recorded as a NoticeDelivery: the API inbox (GET /api/v1/notices, at once), e-mail
to the tenant's contact (a job after commit, retried) and the tenant's webhook (a
delivery.CallbackDelivery through delivery/callbacks.py: signed with the callback secret,
SSRF-guarded and retried by smsplatform.webhooks exactly like status callbacks). Announced changes must respect their notice periods (MIN_NOTICE below).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from smsplatform import jobs
from smsplatform.dates import add_calendar_months
from smsplatform.errors import DomainError, NotFound

from .models import (
    Notice,
    NoticeBroadcast,
    NoticeChannel,
    NoticeDelivery,
    NoticeDeliveryState,
    NoticeKind,
    Tenant,
    TenantKind,
    TenantState,
)
from .services import Actor, record_operation

log = logging.getLogger(__name__)

ALL_CHANNELS = (NoticeChannel.INBOX, NoticeChannel.EMAIL, NoticeChannel.WEBHOOK)
WEBHOOK_EVENT = "notice"


class NoticeError(DomainError):
    code = "notice_error"


class NoticePeriodTooShort(NoticeError):
    code = "notice_period_too_short"
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_message = "The change takes effect sooner than its notice period allows."


class NoticeNotFound(NotFound):
    code = "notice_not_found"
    default_message = "No such notice."


# --- notice periods --------------------------------------------------------------------------


def earliest_effective_at(*, kind: str, now: datetime | None = None) -> datetime | None:
    """When a change of this kind may take effect at the earliest; None when no period applies.

    - function change that may interrupt service: 7 days (004 §6.5) and one month (002 §5.5), the
      longer by default; NOTICES_FUNCTION_CHANGE_DAYS sets another period (never below 7 days);
    - price change (R-BIL-4) and terms change (R-TEN-7): 7 days;
    - maintenance (R-DLV-6): one working day (delivery's working-day calendar).
    """
    now = now or timezone.now()
    if kind == NoticeKind.FUNCTION_CHANGE:
        days = getattr(settings, "NOTICES_FUNCTION_CHANGE_DAYS", None)
        if days is not None:
            return now + timedelta(days=max(int(days), 7))
        return max(now + timedelta(days=7), add_calendar_months(now, 1))
    if kind in (NoticeKind.PRICE_CHANGE, NoticeKind.TERMS_CHANGE):
        return now + timedelta(days=7)
    if kind == NoticeKind.MAINTENANCE:
        from delivery.calendar import earliest_maintenance_start

        return earliest_maintenance_start(now=now)
    return None


def check_notice_period(*, kind: str, effective_at: datetime | None, now: datetime | None = None) -> None:
    earliest = earliest_effective_at(kind=kind, now=now)
    if earliest is None:
        return
    if effective_at is None:
        raise NoticePeriodTooShort(
            "This kind of notice announces a change: give the time it takes effect.",
            code="effective_at_required",
            details={"kind": kind, "earliest_effective_at": earliest.isoformat()},
        )
    if effective_at < earliest:
        raise NoticePeriodTooShort(
            f"A {NoticeKind(kind).label.lower()} may take effect at {earliest.isoformat()} at the earliest.",
            details={"kind": kind, "earliest_effective_at": earliest.isoformat()},
        )


# --- sending ---------------------------------------------------------------------------------


def notice_payload(notice: Notice) -> dict:
    """What the webhook receives and the inbox shows."""
    return {
        "event": WEBHOOK_EVENT,
        "notice_id": notice.pk,
        "kind": notice.kind,
        "subject": {"zh": notice.subject_zh, "en": notice.subject_en},
        "body": {"zh": notice.body_zh, "en": notice.body_en},
        "data": notice.data,
        "effective_at": notice.effective_at.isoformat() if notice.effective_at else None,
        "created_at": notice.created_at.isoformat(),
    }


def notify(
    *,
    tenant: Tenant,
    kind: str,
    subject_zh: str,
    subject_en: str,
    body_zh: str,
    body_en: str,
    data: dict | None = None,
    effective_at: datetime | None = None,
    dedupe_key: str = "",
    actor: Actor | None = None,
    broadcast: NoticeBroadcast | None = None,
    channels: Iterable[str] = ALL_CHANNELS,
    now: datetime | None = None,
) -> Notice:
    """Tell a tenant something the agreements require (R-DLV-7). Call it inside the changing
    transaction: e-mail and webhook go out after commit. With a `dedupe_key` a second call for the
    same occurrence returns the first notice and sends nothing."""
    actor = actor or Actor.system("notices")
    if kind not in NoticeKind.values:
        raise NoticeError(f"Unknown notice kind {kind!r}.", code="invalid_kind")
    check_notice_period(kind=kind, effective_at=effective_at, now=now)
    dedupe_key = dedupe_key[:120]
    with transaction.atomic():
        if dedupe_key:
            existing = Notice.objects.filter(tenant=tenant, dedupe_key=dedupe_key).first()
            if existing is not None:
                return existing
        try:
            with transaction.atomic():
                notice = Notice.objects.create(
                    tenant=tenant,
                    kind=kind,
                    subject_zh=subject_zh[:200],
                    subject_en=subject_en[:200],
                    body_zh=body_zh,
                    body_en=body_en,
                    data=data or {},
                    effective_at=effective_at,
                    dedupe_key=dedupe_key,
                    broadcast=broadcast,
                    created_by_label=actor.label,
                )
        except IntegrityError:  # a concurrent call for the same occurrence won
            return Notice.objects.get(tenant=tenant, dedupe_key=dedupe_key)
        outcome = _create_deliveries(notice=notice, tenant=tenant, channels=set(channels))
        record_operation(
            actor=actor,
            action="notice.send",
            tenant=tenant,
            obj=notice,
            after={"kind": kind, "subject": subject_en[:200], "deliveries": outcome},
        )
    return notice


def _create_deliveries(*, notice: Notice, tenant: Tenant, channels: set[str]) -> dict[str, str]:
    from delivery.callbacks import delivery_settings_for, enqueue_callback

    now = timezone.now()
    outcome = {}
    # The inbox is the record of last resort: always written.
    NoticeDelivery.objects.create(
        notice=notice, channel=NoticeChannel.INBOX, address="api", state=NoticeDeliveryState.SENT, sent_at=now
    )
    outcome[NoticeChannel.INBOX] = NoticeDeliveryState.SENT
    if NoticeChannel.EMAIL in channels:
        email = tenant.contact_email
        item = NoticeDelivery.objects.create(
            notice=notice,
            channel=NoticeChannel.EMAIL,
            address=email,
            state=NoticeDeliveryState.PENDING if email else NoticeDeliveryState.SKIPPED,
            last_error="" if email else "the tenant has no contact e-mail",
        )
        if email:
            item_id = item.pk
            transaction.on_commit(lambda: _enqueue_email(item_id), robust=True)
        outcome[NoticeChannel.EMAIL] = item.state
    if NoticeChannel.WEBHOOK in channels:
        url = delivery_settings_for(tenant=tenant).callback_url
        callback = enqueue_callback(tenant=tenant, url=url, event=WEBHOOK_EVENT, payload=notice_payload(notice))
        item = NoticeDelivery.objects.create(
            notice=notice,
            channel=NoticeChannel.WEBHOOK,
            address=url,
            callback_id=callback.pk if callback else None,
            state=NoticeDeliveryState.PENDING if callback else NoticeDeliveryState.SKIPPED,
            last_error="" if callback else "the tenant has no callback URL",
        )
        outcome[NoticeChannel.WEBHOOK] = item.state
    return outcome


def _enqueue_email(delivery_id: int) -> None:
    jobs.enqueue("send_notice_email_job", delivery_id, queue="notices")


def email_text(notice: Notice) -> tuple[str, str]:
    subject = f"{notice.subject_zh} / {notice.subject_en}"
    body = f"{notice.body_zh}\n\n----\n\n{notice.body_en}"
    if notice.effective_at:
        when = timezone.localtime(notice.effective_at).strftime("%Y-%m-%d %H:%M %Z")
        body += f"\n\n生效时间 / Takes effect: {when}"
    return subject, body


def deliver_notice_email(*, delivery_id: int) -> NoticeDelivery | None:
    """Send one pending notice e-mail; a failure is recorded and re-raised (the job retries) until
    NOTICES_EMAIL_MAX_ATTEMPTS, then the delivery is failed (visible in the admin)."""
    max_attempts = getattr(settings, "NOTICES_EMAIL_MAX_ATTEMPTS", 5)
    with transaction.atomic():
        item = (
            NoticeDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("notice")
            .filter(pk=delivery_id, channel=NoticeChannel.EMAIL, state=NoticeDeliveryState.PENDING)
            .first()
        )
        if item is None:
            return None
        item.attempts += 1
        subject, body = email_text(item.notice)
        try:
            send_mail(subject, body, None, [item.address])
        except Exception as exc:  # SMTP and socket errors alike: record, then let the job retry
            item.last_error = str(exc)[:500] or type(exc).__name__
            if item.attempts >= max_attempts:
                item.state = NoticeDeliveryState.FAILED
                item.save()
                return item
            item.save()
            transaction.on_commit(lambda: _enqueue_email_later(item.pk, item.attempts), robust=True)
            return item
        item.state, item.sent_at, item.last_error = NoticeDeliveryState.SENT, timezone.now(), ""
        item.save()
    return item


def _enqueue_email_later(delivery_id: int, attempts: int) -> None:
    delay = min(60 * 2 ** (attempts - 1), 3600) * 1000
    jobs.enqueue("send_notice_email_job", delivery_id, queue="notices", delay_ms=delay)


def retry_pending_emails(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """The sweeper: pending e-mails whose job was lost (broker down at commit) are sent now."""
    cutoff = timezone.now() - older_than
    ids = list(
        NoticeDelivery.objects.filter(
            channel=NoticeChannel.EMAIL, state=NoticeDeliveryState.PENDING, created_at__lt=cutoff
        ).values_list("pk", flat=True)[:500]
    )
    for pk in ids:
        deliver_notice_email(delivery_id=pk)
    return len(ids)


def refresh_webhook_deliveries(*, deliveries: Iterable[NoticeDelivery]) -> None:
    """Copy the outcome of webhook deliveries from their CallbackDelivery rows (one query)."""
    from delivery.models import CallbackDelivery, CallbackState

    pending = [d for d in deliveries if d.channel == NoticeChannel.WEBHOOK and d.state == NoticeDeliveryState.PENDING]
    callbacks = CallbackDelivery.objects.in_bulk([d.callback_id for d in pending if d.callback_id])
    for item in pending:
        callback = callbacks.get(item.callback_id)
        if callback is None or callback.state == CallbackState.PENDING:
            continue
        item.attempts, item.last_error = callback.attempts, callback.last_error
        if callback.state == CallbackState.DELIVERED:
            item.state, item.sent_at = NoticeDeliveryState.SENT, callback.delivered_at
        else:
            item.state = NoticeDeliveryState.FAILED
        item.save(update_fields=["state", "sent_at", "attempts", "last_error"])


def sync_webhook_deliveries() -> int:
    """The periodic job: bring webhook delivery records up to date with their callbacks."""
    pending = list(
        NoticeDelivery.objects.filter(channel=NoticeChannel.WEBHOOK, state=NoticeDeliveryState.PENDING)[:2000]
    )
    refresh_webhook_deliveries(deliveries=pending)
    return len(pending)


# --- the inbox -------------------------------------------------------------------------------


def notices_for(*, tenant: Tenant, unacknowledged: bool = False, kind: str | None = None):
    """The tenant's inbox, newest first (a selector: reads only)."""
    rows = Notice.objects.filter(tenant=tenant)
    if unacknowledged:
        rows = rows.filter(acknowledged_at__isnull=True)
    if kind:
        rows = rows.filter(kind=kind)
    return rows.order_by("-created_at", "-id")


def acknowledge_notice(*, tenant: Tenant, notice_id: int, actor: Actor) -> Notice:
    """The tenant confirms it read a notice; a second acknowledgement keeps the first time."""
    with transaction.atomic():
        notice = Notice.objects.select_for_update().filter(tenant=tenant, pk=notice_id).first()
        if notice is None:
            raise NoticeNotFound(details={"notice_id": notice_id})
        if notice.acknowledged_at is None:
            notice.acknowledged_at = timezone.now()
            notice.acknowledged_by_label = actor.label
            notice.save(update_fields=["acknowledged_at", "acknowledged_by_label"])
            record_operation(actor=actor, action="notice.acknowledge", tenant=tenant, obj=notice)
    return notice


# --- operators' broadcasts -------------------------------------------------------------------


def broadcast_audience(*, broadcast: NoticeBroadcast):
    if broadcast.all_tenants:
        return Tenant.objects.exclude(kind=TenantKind.PLATFORM).filter(
            state__in=[TenantState.ACTIVE, TenantState.SUSPENDED, TenantState.PENDING]
        )
    return broadcast.tenants.exclude(kind=TenantKind.PLATFORM).exclude(state=TenantState.TERMINATED)


def compose_broadcast(
    *,
    kind: str,
    subject_zh: str,
    subject_en: str,
    body_zh: str,
    body_en: str,
    actor: Actor,
    effective_at: datetime | None = None,
    all_tenants: bool = False,
    tenants: Iterable[Tenant] = (),
) -> NoticeBroadcast:
    """An operator's notice to all tenants or a selection: stored, then sent at once."""
    tenants = list(tenants)
    if not all_tenants and not tenants:
        raise NoticeError("The broadcast has no recipients: choose tenants or all tenants.", code="no_audience")
    if not all((subject_zh.strip(), subject_en.strip(), body_zh.strip(), body_en.strip())):
        raise NoticeError("A notice needs its subject and text in Chinese and English.", code="text_required")
    check_notice_period(kind=kind, effective_at=effective_at)
    with transaction.atomic():
        broadcast = NoticeBroadcast.objects.create(
            kind=kind,
            subject_zh=subject_zh,
            subject_en=subject_en,
            body_zh=body_zh,
            body_en=body_en,
            effective_at=effective_at,
            all_tenants=all_tenants,
            created_by_label=actor.label,
        )
        if not all_tenants:
            broadcast.tenants.set(tenants)
        send_broadcast(broadcast=broadcast, actor=actor)
    broadcast.refresh_from_db()
    return broadcast


def send_broadcast(*, broadcast: NoticeBroadcast, actor: Actor) -> int:
    """Send an operator's broadcast: one notice per tenant of its audience (R-DLV-7). Sending twice
    sends nothing new (one notice per tenant and broadcast)."""
    check_notice_period(kind=broadcast.kind, effective_at=broadcast.effective_at)
    with transaction.atomic():
        broadcast = NoticeBroadcast.objects.select_for_update().get(pk=broadcast.pk)
        audience = list(broadcast_audience(broadcast=broadcast))
        if not audience:
            raise NoticeError("The broadcast has no recipients: choose tenants or all tenants.", code="no_audience")
        for tenant in audience:
            notify(
                tenant=tenant,
                kind=broadcast.kind,
                subject_zh=broadcast.subject_zh,
                subject_en=broadcast.subject_en,
                body_zh=broadcast.body_zh,
                body_en=broadcast.body_en,
                effective_at=broadcast.effective_at,
                data={"broadcast_id": broadcast.pk},
                dedupe_key=f"broadcast:{broadcast.pk}",
                broadcast=broadcast,
                actor=actor,
            )
        broadcast.sent_at = broadcast.sent_at or timezone.now()
        broadcast.notice_count = broadcast.notices.count()
        broadcast.save(update_fields=["sent_at", "notice_count"])
        record_operation(
            actor=actor,
            action="notice.broadcast",
            obj=broadcast,
            after={"kind": broadcast.kind, "tenants": len(audience), "all_tenants": broadcast.all_tenants},
        )
    return len(audience)


def notify_all_tenants(*, kind: str, dedupe_key: str, **text) -> int:
    """A platform-wide notice (maintenance, terms change, incident): every live tenant, once each."""
    count = 0
    tenants = Tenant.objects.exclude(kind=TenantKind.PLATFORM).exclude(state=TenantState.TERMINATED)
    for tenant in tenants.iterator():
        notify(tenant=tenant, kind=kind, dedupe_key=dedupe_key, **text)
        count += 1
    return count
