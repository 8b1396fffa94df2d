"""Outbound HTTP to tenant-chosen URLs (delivery callbacks, billing low-balance webhooks, anything
new): the one place that decides where the platform may connect (SSRF).

A URL is checked when it is saved and again when it is called: http(s) only, no user:password@,
a host name, and every address it resolves to public (no loopback, private, link-local such as
169.254.169.254, multicast or reserved). The call connects to an address that passed the check
(a DNS answer that changes in between cannot redirect it) and never follows redirects.
OUTBOUND_ALLOW_PRIVATE_HOSTS (development, tests with a local receiver) lifts the address rule only.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import status

from .errors import DomainError


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
