"""smsplatform.webhooks signing and back-off: the formats docs/delivery.md (X-Signature) and
docs/billing.md (X-Billing-*) promise receivers (R-DLV-4, R-BIL-6)."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from smsplatform import webhooks


def test_x_signature_is_hmac_sha256_of_the_raw_body_R_DLV_4():
    body = b'{"event":"message.status"}'
    headers = webhooks.signature_headers(scheme="signature", secret="s3", body=body)
    assert headers == {"X-Signature": hmac.new(b"s3", body, hashlib.sha256).hexdigest()}


def test_billing_signature_covers_timestamp_and_body_R_BIL_6():
    body = b'{"event":"billing.low_balance"}'
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    headers = webhooks.signature_headers(scheme="billing", secret="s3", body=body, now=now)
    timestamp = str(int(now.timestamp()))
    assert headers["X-Billing-Timestamp"] == timestamp
    expected = hmac.new(b"s3", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Billing-Signature"] == expected


def test_backoff_doubles_and_is_capped_at_an_hour():
    assert [webhooks.backoff(n, base_seconds=10) for n in (1, 2, 3)] == [
        timedelta(seconds=10),
        timedelta(seconds=20),
        timedelta(seconds=40),
    ]
    assert webhooks.backoff(20, base_seconds=10) == timedelta(hours=1)
