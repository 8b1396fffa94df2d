"""Tenants' core: the one gate for tenant states, API keys and request authentication, each
recorded in the operation trail. Registration and profile updates are tenants/registration.py
(a layer above: they screen names with compliance and fulfil update duties).

R-TEN-2 (credentials), R-TEN-3 (states), R-TEN-5 (the term starts on activation), R-AUD-3 (records).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import status

from billing.models import Account
from smsplatform.crypto import decrypt_secret_bytes, encrypt_secret_bytes
from smsplatform.dates import add_calendar_months
from smsplatform.errors import DomainError

from .models import (
    ALLOWED_TRANSITIONS,
    ApiKey,
    ApiNonce,
    OperationRecord,
    Tenant,
    TenantState,
)

# --- errors ----------------------------------------------------------------------------------


class TenantError(DomainError):
    code = "tenant_error"


class InvalidStateTransition(TenantError):
    code = "invalid_state_transition"
    http_status = status.HTTP_409_CONFLICT


class AuthenticationError(DomainError):
    code = "authentication_failed"
    http_status = status.HTTP_401_UNAUTHORIZED
    default_message = "Invalid access key or secret."


class SignatureExpired(AuthenticationError):
    code = "signature_expired"
    default_message = "The request timestamp is outside the allowed window."


class NonceReused(AuthenticationError):
    code = "nonce_reused"
    default_message = "This nonce was already used: replayed request refused."


# --- actors and the operation trail ----------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who did something: an operator (Django user), a customer API key, or the system."""

    kind: str
    id: str
    label: str
    ip_address: str | None = None

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind="system", id="", label=label)

    @classmethod
    def for_user(cls, user, ip_address: str | None = None) -> Actor:
        return cls(kind="user", id=str(user.pk), label=f"user:{user.get_username()}", ip_address=ip_address)

    @classmethod
    def for_api_key(cls, key: ApiKey, ip_address: str | None = None) -> Actor:
        return cls(kind="api_key", id=str(key.pk), label=f"key:{key.access_key_id}", ip_address=ip_address)


def record_operation(
    *,
    actor: Actor,
    action: str,
    tenant: Tenant | None = None,
    obj: Any = None,
    reason: str = "",
    before: dict | None = None,
    after: dict | None = None,
) -> OperationRecord:
    """Append one entry to the operation trail (R-AUD-3). Call it inside the changing transaction."""
    return OperationRecord.objects.create(
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label,
        ip_address=actor.ip_address,
        tenant=tenant,
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "pk", "") or "") if obj is not None else "",
        reason=reason,
        before=before,
        after=after,
    )


# --- tenant states ---------------------------------------------------------------------------


def change_tenant_state(*, tenant: Tenant, to_state: str, actor: Actor, reason: str) -> Tenant:
    """The one gate for tenant states (R-TEN-3). Terminated is permanent."""
    if not reason.strip():
        raise TenantError("A reason is required.", code="reason_required")
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if to_state not in ALLOWED_TRANSITIONS[locked.state]:
            raise InvalidStateTransition(
                f"A {locked.state} tenant cannot become {to_state}.",
                details={"from": locked.state, "to": to_state},
            )
        before = {"state": locked.state}
        locked.state = to_state
        locked.state_reason = reason
        locked.state_changed_at = timezone.now()
        locked.save(update_fields=["state", "state_reason", "state_changed_at"])
        after: dict[str, Any] = {"state": to_state}
        if before["state"] == TenantState.PENDING and to_state == TenantState.ACTIVE:
            # R-TEN-5: the one-year term starts on activation
            after["service_expires_at"] = start_term(tenant=locked, now=locked.state_changed_at).isoformat()
        if to_state == TenantState.TERMINATED:
            # A terminated tenant cannot call the API again with any key.
            locked.api_keys.filter(revoked_at__isnull=True).update(
                revoked_at=locked.state_changed_at, revoked_reason="tenant terminated"
            )
        record_operation(
            actor=actor,
            action=f"tenant.{to_state}",
            tenant=locked,
            obj=locked,
            reason=reason,
            before=before,
            after=after,
        )
    tenant.state, tenant.state_reason, tenant.state_changed_at = (
        locked.state,
        locked.state_reason,
        locked.state_changed_at,
    )
    return tenant


# --- the service term's start (R-TEN-5; the rest is tenants/term.py) -------------------------

TERM_MONTHS = 12


def lock_term_account(tenant: Tenant) -> Account:
    """The tenant's billing account, where the term lives, created if missing and locked.
    Lock order: tenant row (callers), then the account row, like billing's own services."""
    Account.objects.get_or_create(tenant=tenant)
    return Account.objects.select_for_update().get(tenant=tenant)


def start_term(*, tenant: Tenant, now: datetime | None = None) -> datetime:
    """Set the first term (one year from now) unless one is set already; returns the expiry.
    Called inside the activating transaction, which records it (tenant.active)."""
    now = now or timezone.now()
    account = lock_term_account(tenant)
    if account.service_expires_at is None:
        account.service_expires_at = add_calendar_months(now, TERM_MONTHS)
        account.save(update_fields=["service_expires_at"])
    return account.service_expires_at


def approve_tenant(*, tenant: Tenant, actor: Actor, reason: str = "real-name review passed") -> Tenant:
    return change_tenant_state(tenant=tenant, to_state=TenantState.ACTIVE, actor=actor, reason=reason)


def suspend_tenant(*, tenant: Tenant, actor: Actor, reason: str) -> Tenant:
    return change_tenant_state(tenant=tenant, to_state=TenantState.SUSPENDED, actor=actor, reason=reason)


def reactivate_tenant(*, tenant: Tenant, actor: Actor, reason: str) -> Tenant:
    return change_tenant_state(tenant=tenant, to_state=TenantState.ACTIVE, actor=actor, reason=reason)


def terminate_tenant(*, tenant: Tenant, actor: Actor, reason: str) -> Tenant:
    return change_tenant_state(tenant=tenant, to_state=TenantState.TERMINATED, actor=actor, reason=reason)


# --- API keys --------------------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    # Secrets are 256-bit random strings, so a fast hash is as strong as a slow KDF here.
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_key(*, tenant: Tenant, actor: Actor, label: str = "") -> tuple[ApiKey, str]:
    """Create a key; returns (key, secret). The secret is never retrievable again (R-TEN-2)."""
    if tenant.state == TenantState.TERMINATED:
        raise InvalidStateTransition("A terminated tenant gets no keys.")
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            tenant=tenant,
            access_key_id="AK" + secrets.token_hex(10).upper(),
            secret_hash=hash_secret(secret),
            secret_encrypted=encrypt_secret_bytes(secret),
            label=label,
            created_by=actor.label,
        )
        record_operation(
            actor=actor, action="api_key.issue", tenant=tenant, obj=key, after={"access_key_id": key.access_key_id}
        )
    return key, secret


def revoke_api_key(*, key: ApiKey, actor: Actor, reason: str = "") -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=key.pk)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.revoked_reason = reason
            key.save(update_fields=["revoked_at", "revoked_reason"])
            record_operation(actor=actor, action="api_key.revoke", tenant=key.tenant, obj=key, reason=reason)
    return key


def rotate_api_key(*, key: ApiKey, actor: Actor, grace: timedelta = timedelta(0)) -> tuple[ApiKey, str]:
    """Issue a successor; the old key stops working after `grace` (immediately by default)."""
    with transaction.atomic():
        new_key, secret = issue_api_key(tenant=key.tenant, actor=actor, label=key.label)
        if grace:
            ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() + grace)
            record_operation(
                actor=actor,
                action="api_key.rotate",
                tenant=key.tenant,
                obj=key,
                after={"successor": new_key.access_key_id},
            )
        else:
            revoke_api_key(key=key, actor=actor, reason=f"rotated to {new_key.access_key_id}")
    return new_key, secret


def _cached_key(access_key_id: str) -> ApiKey | None:
    """The key and its tenant from the per-process cache (issue 17; invalidated by the "tenants"
    counter): a copy, so nothing a request does to it reaches other requests."""
    import copy

    from smsplatform import config_cache

    def load() -> ApiKey | None:
        return ApiKey.objects.select_related("tenant").filter(access_key_id=access_key_id).first()

    master = config_cache.get("tenants", ("key", access_key_id), load, keep_none=False)
    if master is None:
        return None
    key = copy.copy(master)
    key.tenant = copy.copy(master.tenant)
    key._cached_master = master
    return key


def _usable_key(access_key_id: str) -> ApiKey:
    if not valid_access_key_id(access_key_id):
        raise AuthenticationError()
    key = _cached_key(access_key_id)
    now = timezone.now()
    if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise AuthenticationError()
    return key


def authenticate_plain(*, access_key_id: str, secret: str) -> ApiKey:
    key = _usable_key(access_key_id)
    if not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        raise AuthenticationError()
    _touch(key)
    return key


def canonical_request(*, method: str, path: str, query: str, timestamp: str, nonce: str, body: bytes) -> str:
    """What a client signs in HMAC mode (docs/api.md shows a client in ten lines)."""
    query = "&".join(sorted(part for part in query.split("&") if part))
    return "\n".join([method.upper(), path, query, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def sign_request(*, secret: str, canonical: str) -> str:
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


_KEY_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")


def _check_signed_headers(*, access_key_id: str, timestamp: str, nonce: str, signature: str) -> int:
    """Bounded parsing of the signing headers: anything malformed is a 401 with a code, never a
    500 (a 400-digit timestamp overflowed a float; a non-ASCII signature broke compare_digest)."""
    if not (0 < len(timestamp) <= 12 and timestamp.isascii() and timestamp.isdigit()):
        raise SignatureExpired("The timestamp must be Unix seconds.", code="invalid_timestamp")
    if not (0 < len(nonce) <= 64 and nonce.isascii() and nonce.isprintable()):
        raise AuthenticationError("The nonce must be 1 to 64 printable ASCII characters.", code="invalid_nonce")
    if len(signature) != 64 or not set(signature) <= _HEX:
        raise AuthenticationError("The signature must be 64 hex digits (HMAC-SHA256).", code="invalid_signature")
    return int(timestamp)


def valid_access_key_id(access_key_id: str) -> bool:
    return 0 < len(access_key_id) <= 32 and set(access_key_id) <= _KEY_ID_CHARS


def authenticate_signed(*, access_key_id: str, timestamp: str, nonce: str, signature: str, canonical: str) -> ApiKey:
    """HMAC-SHA256 mode: fresh timestamp, valid signature, nonce never seen before (R-TEN-2)."""
    sent_at = _check_signed_headers(access_key_id=access_key_id, timestamp=timestamp, nonce=nonce, signature=signature)
    key = _usable_key(access_key_id)
    now = timezone.now()
    window = settings.API_HMAC_MAX_SKEW_SECONDS
    if abs(now.timestamp() - sent_at) > window:
        raise SignatureExpired()
    secret = decrypt_secret_bytes(key.secret_encrypted)
    if not hmac.compare_digest(sign_request(secret=secret, canonical=canonical), signature.lower()):
        raise AuthenticationError("The request signature does not match.", code="signature_mismatch")
    if not consume_nonce(access_key_id=access_key_id, nonce=nonce):
        raise NonceReused()
    _touch(key)
    return key


def consume_nonce(*, access_key_id: str, nonce: str) -> bool:
    """Record a nonce as used, committed at once whatever becomes of the request (R-TEN-2).

    The request itself is one transaction (ATOMIC_REQUESTS): a nonce written there was rolled
    back with every refused request (400, 403, 429…), so the captured request could be replayed
    later and succeed. A connection of its own, in autocommit, keeps it. Returns False if seen.
    """
    from django.db import DEFAULT_DB_ALIAS, connections

    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with own.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO public.{ApiNonce._meta.db_table} (access_key_id, nonce, created_at) "  # noqa: S608
                "VALUES (%s, %s, now()) ON CONFLICT (access_key_id, nonce) DO NOTHING RETURNING id",
                [access_key_id, nonce],
            )
            return cursor.fetchone() is not None
    finally:
        own.close()


def purge_expired_nonces() -> int:
    """Nonces older than the window can never be replayed (the timestamp check refuses them)."""
    cutoff = timezone.now() - timedelta(seconds=2 * settings.API_HMAC_MAX_SKEW_SECONDS)
    deleted, _ = ApiNonce.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _touch(key: ApiKey) -> None:
    """Record the last use, at most once per resolution period (keeps writes off the hot path)."""
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if key.last_used_at is None or now - key.last_used_at >= resolution:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        Tenant.objects.filter(pk=key.tenant_id).update(last_activity_at=now)
        key.last_used_at = now
        if master := getattr(key, "_cached_master", None):  # the cached copy (issue 17)
            master.last_used_at = now
