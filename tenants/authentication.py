"""API-key authentication: resolves the tenant and switches the connection to its schema.

Two modes (R-TEN-2), see docs/api.md:
- plain:  X-Access-Key-Id + X-Access-Key-Secret headers;
- signed: X-Access-Key-Id + X-Timestamp + X-Nonce + X-Signature (HMAC-SHA256 of the canonical
          request), timestamp within the window and nonce never reused.
"""

from dataclasses import dataclass

from django.db import connection
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

from smsplatform import config_cache

from . import services
from .models import ApiKey, Tenant, TenantState


@dataclass
class ApiCaller:
    """request.user for API calls: the tenant behind the key."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    @property
    def tenant(self) -> Tenant:
        return self.api_key.tenant

    def __str__(self) -> str:
        return self.api_key.access_key_id


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        meta = request.META
        key_id = meta.get("HTTP_X_ACCESS_KEY_ID")
        if not key_id:
            return None
        # Issue 17: one read of the configuration counters per request, so everything cached
        # per process (this key, the gate's filings, prices, routing) is current as of now.
        config_cache.refresh()
        if "HTTP_X_SIGNATURE" in meta:
            canonical = services.canonical_request(
                method=request.method,
                path=request.path,
                query=meta.get("QUERY_STRING", ""),
                timestamp=meta.get("HTTP_X_TIMESTAMP", ""),
                nonce=meta.get("HTTP_X_NONCE", ""),
                body=request.body,
            )
            key = services.authenticate_signed(
                access_key_id=key_id,
                timestamp=meta.get("HTTP_X_TIMESTAMP", ""),
                nonce=meta.get("HTTP_X_NONCE", ""),
                signature=meta["HTTP_X_SIGNATURE"],
                canonical=canonical,
            )
        else:
            key = services.authenticate_plain(access_key_id=key_id, secret=meta.get("HTTP_X_ACCESS_KEY_SECRET", ""))
        connection.set_tenant(key.tenant)
        return ApiCaller(api_key=key), key

    def authenticate_header(self, request):
        return 'ApiKey realm="api"'


def caller_tenant(request) -> Tenant:
    return request.user.tenant


def caller_actor(request) -> services.Actor:
    return services.Actor.for_api_key(request.auth, ip_address=request.META.get("REMOTE_ADDR"))


class IsActiveTenant(BasePermission):
    """Active tenants may do everything; suspended ones may read (to see why and to rectify)
    but not write; pending and terminated tenants are refused (R-TEN-3). Refusals are 403 with
    the stable code tenant_<state>.

    A view may set `readable_in_any_state = True` (its GETs are open to every state) or
    `allowed_when_suspended = True` for writes a suspended tenant still needs (answering
    complaints, for instance).
    """

    def has_permission(self, request, view):
        if not isinstance(request.user, ApiCaller):
            raise exceptions.NotAuthenticated("Send X-Access-Key-Id and a secret or an HMAC signature.")
        tenant = request.user.tenant
        if tenant.state == TenantState.ACTIVE:
            return True
        reading = request.method in SAFE_METHODS
        if reading and getattr(view, "readable_in_any_state", False):
            return True
        if tenant.state == TenantState.SUSPENDED and (reading or getattr(view, "allowed_when_suspended", False)):
            return True
        raise exceptions.PermissionDenied(
            f"This account is {tenant.state}: {tenant.state_reason or 'contact your operator'}.",
            code=f"tenant_{tenant.state}",
        )


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents both modes in the OpenAPI schema (security schemes)."""

    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = ["AccessKeyId", "AccessKeySecret"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-Access-Key-Id"},
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Access-Key-Secret",
                "description": "Or sign the request: X-Timestamp, X-Nonce, X-Signature (see docs/api.md).",
            },
        ]
