"""Outbound webhooks to tenant-chosen URLs (status callbacks, notices, billing low-balance alerts,
anything new): the one implementation of URL checks (SSRF), signing, and delivery with records and
back-off.

Delivery: a record (a row with url, body, state, attempts, next_attempt_at, last_status_code,
last_error, delivered_at) is written in the transaction that decides to notify; a job POSTs it
after commit; `attempt()` makes one try, and a failure schedules the next one after
`backoff()` (base × 2^(n-1), capped at an hour) until the record's attempt limit, then the record
is `failed` and stays visible. delivery/callbacks.py drives its CallbackDelivery rows with it;
`WebhookDelivery` rows (smsplatform.models: billing alerts) are recorded and delivered here.

Signing (`sign`): hex HMAC-SHA256 with the receiver's secret, of the raw body, or of
"<timestamp>.<body>" when the scheme sends a timestamp. SCHEMES names the headers each external
format uses (docs/delivery.md for X-Signature, docs/billing.md for X-Billing-*).

A URL is checked when it is saved and again when it is called: http(s) only, no user:password@,
a host name, and every address it resolves to public (no loopback, private, link-local such as
169.254.169.254, multicast or reserved). The call connects to an address that passed the check
(a DNS answer that changes in between cannot redirect it) and never follows redirects.
OUTBOUND_ALLOW_PRIVATE_HOSTS (development, tests with a local receiver) lifts the address rule only.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import status

from . import crypto, jobs
from .errors import DomainError
from .models import WebhookDelivery, WebhookState

log = logging.getLogger(__name__)


class OutboundUrlRefused(DomainError):
    code = "invalid_webhook_url"
    http_status = status.HTTP_400_BAD_REQUEST
    default_message = "This URL may not be called by the platform."


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def check_outbound_url(
    url: str, *, code: str = "invalid_webhook_url", when_saved: bool = True, allow_private: bool | None = None
) -> Target:
    """Raise OutboundUrlRefused (with `code`) unless `url` may be called; return where to connect.

    When saved, a host that does not resolve (yet) is accepted: the call checks again and
    refuses it then. `allow_private` defaults to settings.OUTBOUND_ALLOW_PRIVATE_HOSTS."""
    if allow_private is None:
        allow_private = bool(getattr(settings, "OUTBOUND_ALLOW_PRIVATE_HOSTS", False))
    if not isinstance(url, str) or len(url) > 2000 or not url.isascii() or any(ch.isspace() for ch in url):
        raise OutboundUrlRefused("The URL must be plain ASCII without spaces (at most 2000 characters).", code=code)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundUrlRefused(f"The URL cannot be parsed: {exc}.", code=code) from exc
    if parts.scheme not in ("http", "https"):
        raise OutboundUrlRefused("Only http:// and https:// URLs are accepted.", code=code)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise OutboundUrlRefused("The URL may not carry a user name or password.", code=code)
    host = parts.hostname
    if not host:
        raise OutboundUrlRefused("The URL has no host.", code=code)
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        if when_saved:
            return Target(parts.scheme, host, port, path, ())
        raise OutboundUrlRefused(f"{host} cannot be resolved.", code=code) from exc
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            if not ip.is_global or ip.is_multicast:
                raise OutboundUrlRefused(f"{host} resolves to a non-public address ({ip}).", code=code)
    if not addresses:
        raise OutboundUrlRefused(f"{host} cannot be resolved.", code=code)
    return Target(parts.scheme, host, port, path, addresses)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.addresses[0]

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.addresses[0]

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # certificate of the named host


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float, allow_private: bool | None = None) -> int:
    """POST `body` to `url` after checking it again; returns the HTTP status. A redirect (3xx) is
    returned as it is, never followed. Raises OutboundUrlRefused, or OSError on network failure."""
    target = check_outbound_url(url, when_saved=False, allow_private=allow_private)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        response.read(65536)  # a bounded read: the status is all we need
        return response.status
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP response: {exc}") from exc
    finally:
        connection.close()


# --- signing ---------------------------------------------------------------------------------

# Header names per external format; the signature is sign() either way.
#   "signature": X-Signature = HMAC(secret, body)                       (callbacks, notices)
#   "billing":   X-Billing-Timestamp, X-Billing-Signature = HMAC(secret, "<ts>.<body>")  (R-BIL-6)
SCHEMES = ("signature", "billing")


def sign(*, secret: str, body: bytes, timestamp: str | None = None) -> str:
    """Hex HMAC-SHA256 of `body` (or of "<timestamp>.<body>") with the receiver's secret."""
    message = body if timestamp is None else timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(*, scheme: str, secret: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
    if scheme == "signature":
        return {"X-Signature": sign(secret=secret, body=body)}
    if scheme == "billing":
        timestamp = str(int((now or timezone.now()).timestamp()))
        return {
            "X-Billing-Timestamp": timestamp,
            "X-Billing-Signature": sign(secret=secret, body=body, timestamp=timestamp),
        }
    raise ValueError(f"unknown signature scheme {scheme!r}")


# --- delivery with records and back-off ----------------------------------------------------------


def backoff(attempts: int, *, base_seconds: int) -> timedelta:
    """The wait after the `attempts`-th failed try: base × 2^(n-1), at most one hour."""
    return timedelta(seconds=min(base_seconds * (2 ** max(attempts - 1, 0)), 3600))


def attempt(
    record,
    *,
    secret: str,
    scheme: str,
    headers: dict[str, str],
    timeout: float,
    max_attempts: int,
    backoff_seconds: int,
    allow_private: bool | None = None,
) -> int | None:
    """POST a pending record once, signed, and update its fields (the caller holds its row lock
    and saves it). Returns the delay in ms before the next try, or None when it is settled:
    delivered (2xx), failed at `max_attempts`, or refused as a destination (no retry helps)."""
    body = record.body.encode()
    record.attempts += 1
    try:
        check_outbound_url(record.url, when_saved=False, allow_private=allow_private)
    except OutboundUrlRefused as exc:
        record.state, record.last_error = WebhookState.FAILED, f"blocked: {exc.message}"[:500]
        return None
    code, error = None, ""
    try:
        # Checked again at connect time, pinned to the checked address, redirects not followed.
        code = post(
            record.url,
            body=body,
            headers={
                "Content-Type": "application/json",
                **signature_headers(scheme=scheme, secret=secret, body=body),
                **headers,
            },
            timeout=timeout,
            allow_private=allow_private,
        )
    except OutboundUrlRefused as exc:
        error = f"blocked: {exc.message}"[:500]
    except (OSError, ValueError) as exc:
        error = str(exc)[:500]
    record.last_status_code = code
    now = timezone.now()
    if code is not None and 200 <= code < 300:
        record.state, record.delivered_at, record.last_error = WebhookState.DELIVERED, now, ""
        return None
    record.last_error = error or f"HTTP {code}"
    if record.attempts >= max_attempts:
        record.state = WebhookState.FAILED
        return None
    record.next_attempt_at = now + backoff(record.attempts, base_seconds=backoff_seconds)
    return int((record.next_attempt_at - now).total_seconds() * 1000)


# --- WebhookDelivery rows ------------------------------------------------------------------------


def record_webhook(
    *, tenant, url: str, event: str, body: str, scheme: str, secret_token: str, send_now: bool = False
) -> WebhookDelivery:
    """Write the record of one webhook; a job sends it after commit (call it inside the deciding
    transaction), or with `send_now` (from a job) the first try is made at once and only retries
    are queued. `secret_token` is the signing key as stored (crypto.encrypt_secret)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown signature scheme {scheme!r}")
    item = WebhookDelivery.objects.create(
        tenant=tenant,
        url=url,
        event=event,
        body=body,
        scheme=scheme,
        secret=secret_token,
        next_attempt_at=timezone.now(),
    )
    if send_now:
        return deliver_webhook(webhook_id=item.pk) or item
    item_id = item.pk
    transaction.on_commit(lambda: enqueue_webhook_job(item_id), robust=True)
    return item


def enqueue_webhook_job(webhook_id: int, *, delay_ms: int | None = None) -> None:
    try:
        jobs.enqueue("deliver_webhook_job", queue="callbacks", delay_ms=delay_ms, webhook_id=webhook_id)
    except Exception:  # the periodic sweep (retry_due_webhooks_job) sends due ones
        log.exception("could not enqueue webhook %s", webhook_id)


def deliver_webhook(*, webhook_id: int) -> WebhookDelivery | None:
    """One try of a pending WebhookDelivery; a failure schedules the next (back-off)."""
    with transaction.atomic():
        item = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=webhook_id, state=WebhookState.PENDING)
            .first()
        )
        if item is None:
            return None
        delay = attempt(
            item,
            secret=crypto.decrypt_secret(item.secret),
            scheme=item.scheme,
            headers={"X-Event": item.event, "X-Webhook-Id": str(item.pk)},
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            max_attempts=settings.WEBHOOK_MAX_ATTEMPTS,
            backoff_seconds=settings.WEBHOOK_BACKOFF_SECONDS,
        )
        item.save()
        if delay is not None:
            transaction.on_commit(lambda: enqueue_webhook_job(webhook_id, delay_ms=delay), robust=True)
    return item


def due_webhooks(*, now: datetime | None = None) -> list[int]:
    """Pending webhooks whose delayed job was lost (broker down at commit, worker restart)."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 3)
    return list(
        WebhookDelivery.objects.filter(state=WebhookState.PENDING, next_attempt_at__lte=now - grace).values_list(
            "pk", flat=True
        )[:500]
    )
