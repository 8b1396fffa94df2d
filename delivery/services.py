"""Callbacks of delivery (signed status and reply events to the tenant's endpoint, with retries)
and the encryption of secrets at rest.

The other state changes live by concern beside this module: intake (accept), statuses
(transitions), held (cancel, review), outbox (relay), calendar (maintenance), channels.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .channels import delivery_settings_for
from .models import CallbackDelivery, CallbackState, DeliverySettings, Message

log = logging.getLogger(__name__)


def encrypt_secret(value: str) -> str:
    """SMPP passwords and callback secrets are stored encrypted with the platform key (R-TEN-2)."""
    from tenants.services import _fernet

    return _fernet().encrypt(value.encode()).decode()


def decrypt_secret(token: str) -> str:
    from tenants.services import _fernet

    return _fernet().decrypt(token.encode()).decode()


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
