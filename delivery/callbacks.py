"""Status and reply callbacks and the notices' webhook (R-DLV-4, R-DLV-5, R-DLV-7): the tenant's
callback settings (URL, format, signing secret), the bodies, and their CallbackDelivery records.

Sending, signing, the SSRF guard and back-off are smsplatform.webhooks (one implementation for
every outbound webhook); this module only says what a callback is and where it goes. The job is
enqueued by name (smsplatform.jobs), so this module never imports delivery.actors.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from smsplatform import jobs, webhooks
from smsplatform.crypto import decrypt_secret, encrypt_secret
from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .alibaba.push import alibaba_body
from .models import CallbackDelivery, CallbackState, DeliverySettings, Message

log = logging.getLogger(__name__)


# --- the tenant's callback settings ----------------------------------------------------------------


def delivery_settings_for(*, tenant: Tenant) -> DeliverySettings:
    settings_row, _ = DeliverySettings.objects.get_or_create(  # the secret is made only for a new row
        tenant=tenant, defaults={"callback_secret": lambda: encrypt_secret(secrets.token_hex(32))}
    )
    return settings_row


def update_callback_settings(
    *, tenant: Tenant, callback_url: str, actor: Actor, rotate_secret: bool = False, callback_format: str | None = None
) -> DeliverySettings:
    with transaction.atomic():
        row = delivery_settings_for(tenant=tenant)
        row = DeliverySettings.objects.select_for_update().get(pk=row.pk)
        if callback_url:
            webhooks.check_outbound_url(
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

#: what a status callback reads of a message (status_event_body, _status_extra): a path that
#: loads messages with .only()/load_only and may queue their callbacks loads these too, or each
#: message costs a SELECT per missing field (issue 16: request_id and segments were missing)
STATUS_CALLBACK_FIELDS = (
    "id",
    "request_id",
    "client_ref",
    "recipient",
    "status",
    "status_at",
    "reason",
    "error_code",
    "submitted_at",
    "done_at",
    "callback_url",
    "segments",
)


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
    try:
        jobs.enqueue("deliver_callback_job", queue="callbacks", delay_ms=delay_ms or None, callback_id=item_id)
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


def deliver_callback(*, callback_id: int) -> CallbackDelivery | None:
    """POST one callback, signed (X-Signature) with the tenant's callback secret; on failure the
    next try follows with exponential back-off, and after DELIVERY_CALLBACK_MAX_ATTEMPTS the
    callback is failed (visible in the admin). The try itself is smsplatform.webhooks.attempt."""
    with transaction.atomic():
        item = (
            CallbackDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=callback_id, state=CallbackState.PENDING)
            .select_related("tenant")
            .first()
        )
        if item is None:
            return None
        delay = webhooks.attempt(
            item,
            secret=decrypt_secret(delivery_settings_for(tenant=item.tenant).callback_secret),
            scheme="signature",
            headers={"X-Callback-Id": str(item.pk), "X-Event": item.event},
            timeout=settings.DELIVERY_CALLBACK_TIMEOUT_SECONDS,
            max_attempts=settings.DELIVERY_CALLBACK_MAX_ATTEMPTS,
            backoff_seconds=settings.DELIVERY_CALLBACK_BACKOFF_SECONDS,
            allow_private=settings.DELIVERY_CALLBACK_ALLOW_PRIVATE_HOSTS,
        )
        item.save()
        if delay is not None:
            transaction.on_commit(lambda: _send_callback_job(callback_id, delay_ms=delay))
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
