"""Secrets the platform must use again later, encrypted at rest (R-TEN-2).

SMPP bind passwords, callback and webhook HMAC keys (text columns) and API key secrets (a binary
column) are stored encrypted with a key derived from settings.API_KEY_KEK, which is kept outside
the database: a dump alone does not reveal them. billing/migrations/0003 derives the same key
without importing this module (migrations stay frozen).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet
from django.conf import settings


def _fernet() -> Fernet:
    # Read at call time: no settings at import (conventions.md), and tests may change the key.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(settings.API_KEY_KEK.encode()).digest()))


def encrypt_secret(value: str) -> str:
    """The encrypted token of `value`, as text (for CharField columns)."""
    return _fernet().encrypt(value.encode()).decode()


def decrypt_secret(token: str) -> str:
    """The clear text of an encrypt_secret() token; "" for an empty token (no secret set)."""
    return _fernet().decrypt(token.encode()).decode() if token else ""


def encrypt_secret_bytes(value: str) -> bytes:
    """The encrypted token of `value`, as bytes (for BinaryField columns: ApiKey.secret_encrypted)."""
    return _fernet().encrypt(value.encode())


def decrypt_secret_bytes(token: bytes | memoryview) -> str:
    """The clear text of an encrypt_secret_bytes() token."""
    return _fernet().decrypt(bytes(token)).decode()
