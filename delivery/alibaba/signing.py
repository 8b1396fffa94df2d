"""Both ways Alibaba Cloud SDKs sign a request, verified with our API keys as AccessKey pairs
(R-TEN-2): the key id is the AccessKeyId, the secret the AccessKeySecret.

- V3 `ACS3-HMAC-SHA256` (alibabacloud_tea_openapi's default, Utils.get_authorization): an
  Authorization header over the canonical request (method, path, sorted query, the signed
  headers, hex SHA-256 of the body).
- RPC `HMAC-SHA1` (signature_algorithm='v2' and aliyun-python-sdk-core): base64
  HMAC-SHA1(secret + "&", METHOD&%2F&percent(sorted params)) in the `Signature` parameter.

Timestamps within 15 minutes of our clock (Alibaba's window); a SignatureNonce is accepted once
(kept for twice the window, per key and tenant).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote

from django.core.cache import cache
from django.utils import timezone

from smsplatform.crypto import decrypt_secret_bytes
from tenants import services as tenant_services
from tenants.models import ApiKey

from .errors import auth_error

MAX_SKEW_SECONDS = 15 * 60
V3_ALGORITHM = "ACS3-HMAC-SHA256"
# Headers a V3 signature must cover, or a replay could change what they say.
V3_REQUIRED_SIGNED = ("host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")


def _encode(value: str) -> str:
    # RFC 3986 as both SDKs do it: quote(..., safe="~") (space → %20, * → %2A, ~ kept).
    return quote(value, safe="~", encoding="utf-8")


def _key_and_secret(access_key_id: str) -> tuple[ApiKey, str]:
    try:
        key = tenant_services._usable_key(access_key_id)
    except tenant_services.AuthenticationError as exc:
        raise auth_error("InvalidAccessKeyId.NotFound", "Specified access key is not found.") from exc
    secret = decrypt_secret_bytes(key.secret_encrypted)
    return key, secret


def _check_time(text: str) -> None:
    try:
        sent = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError) as exc:
        raise auth_error(
            "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
        ) from exc
    if abs((timezone.now() - sent).total_seconds()) > MAX_SKEW_SECONDS:
        raise auth_error("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")


def _use_nonce(key: ApiKey, nonce: str) -> None:
    if not nonce:
        raise auth_error("MissingParameter", "The input parameter SignatureNonce that is mandatory is missing.")
    digest = hashlib.sha256(nonce.encode()).hexdigest()
    # cache.add is SET NX: exactly one request with this nonce gets through, across processes.
    if not cache.add(f"acs-nonce:{key.tenant.schema_name}:{key.access_key_id}:{digest}", 1, 2 * MAX_SKEW_SECONDS):
        raise auth_error("SignatureNonceUsed", "Specified signature nonce was used already.")


def _accepted(key: ApiKey, nonce: str) -> ApiKey:
    _use_nonce(key, nonce)
    tenant_services._touch(key)
    return key


# --- V3 -----------------------------------------------------------------------------------------


def _meta_header(meta: dict, name: str) -> str | None:
    upper = name.upper().replace("-", "_")
    if upper in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return meta.get(upper)
    return meta.get(f"HTTP_{upper}")


def _parse_authorization(value: str) -> tuple[str, dict[str, str]]:
    algorithm, _, rest = value.partition(" ")
    parts = {}
    for item in rest.split(","):
        name, _, val = item.strip().partition("=")
        parts[name] = val
    return algorithm, parts


def verify_v3(request, query: dict[str, str]) -> ApiKey:
    meta = request.META
    algorithm, parts = _parse_authorization(meta.get("HTTP_AUTHORIZATION", ""))
    if algorithm != V3_ALGORITHM:
        raise auth_error("UnsupportedSignatureMethod", f"Signature method {algorithm} is not supported.")
    access_key_id, signed, given = parts.get("Credential"), parts.get("SignedHeaders"), parts.get("Signature")
    if not (access_key_id and signed and given):
        raise auth_error("IncompleteSignature", "The Authorization header is incomplete.")
    names = signed.split(";")
    if any(required not in names for required in V3_REQUIRED_SIGNED):
        raise auth_error("IncompleteSignature", f"SignedHeaders must include {', '.join(V3_REQUIRED_SIGNED)}.")
    key, secret = _key_and_secret(access_key_id)
    _check_time(meta.get("HTTP_X_ACS_DATE", ""))
    payload_hash = hashlib.sha256(request.body).hexdigest()
    if meta.get("HTTP_X_ACS_CONTENT_SHA256", "") != payload_hash:
        raise auth_error("SignatureDoesNotMatch", "x-acs-content-sha256 does not match the request body.")
    headers = ""
    for name in names:
        value = _meta_header(meta, name)
        headers += f"{name}:{(value or '').strip()}\n"
    canonical_query = "&".join(f"{k}={_encode(query[k])}" for k in sorted(query))
    canonical = f"{request.method}\n{request.path or '/'}\n{canonical_query}\n{headers}\n{signed}\n{payload_hash}"
    to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise auth_error(
            "SignatureDoesNotMatch", "Specified signature does not match our calculation (V3 ACS3-HMAC-SHA256)."
        )
    return _accepted(key, meta.get("HTTP_X_ACS_SIGNATURE_NONCE", ""))


# --- RPC (v2) -------------------------------------------------------------------------------------


def rpc_string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(f"{_encode(k)}={_encode(params[k])}" for k in sorted(params))
    return f"{method.upper()}&%2F&{_encode(canonical)}"


def verify_rpc(request, params: dict[str, str]) -> ApiKey:
    """`params`: every query and form parameter (Signature included)."""
    params = dict(params)
    given = params.pop("Signature", "")
    for name in ("AccessKeyId", "SignatureNonce", "Timestamp"):
        if not params.get(name):
            raise auth_error("MissingParameter", f"The input parameter {name} that is mandatory is missing.")
    if params.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
        raise auth_error(
            "UnsupportedSignatureMethod", f"Signature method {params['SignatureMethod']} is not supported."
        )
    key, secret = _key_and_secret(params["AccessKeyId"])
    _check_time(params["Timestamp"])
    to_sign = rpc_string_to_sign(request.method, params)
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    if not hmac.compare_digest(base64.b64encode(digest).decode(), given):
        raise auth_error(
            "SignatureDoesNotMatch",
            f"Specified signature does not match our calculation (HMAC-SHA1). Server string to sign is: {to_sign}",
        )
    return _accepted(key, params["SignatureNonce"])


def authenticate(request, query: dict[str, str], form: dict[str, str]) -> ApiKey:
    """The key behind a signed request, or an AlibabaError as Alibaba answers it."""
    if request.META.get("HTTP_AUTHORIZATION", "").startswith("ACS3-"):
        return verify_v3(request, query)
    if "Signature" in query or "Signature" in form:
        return verify_rpc(request, {**form, **query})
    raise auth_error("MissingParameter", "The request is not signed (no Authorization header, no Signature).")
