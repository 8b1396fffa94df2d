"""Low-balance alerts (R-BIL-6): threshold, e-mail and signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from tenants.models import Tenant
from tenants.services import Actor, record_operation

from ..errors import (
    BillingError,
    InvalidAmount,
)
from ..models import (
    Account,
)
from ..money import format_money
from .ledger import _locked_account

logger = logging.getLogger(__name__)


# --- low-balance alerts (R-BIL-6) ---------------------------------------------------------------------


def set_low_balance_alert(
    *, tenant: Tenant, threshold: int | None, actor: Actor, webhook_url: str | None = None
) -> Account:
    """The tenant's threshold (None switches alerts off) and optional webhook. Setting it arms the
    alert; a webhook gets a signing secret on first use (shown in the API response)."""
    if threshold is not None and (not isinstance(threshold, int) or threshold < 0):
        raise InvalidAmount("The threshold is a whole, non-negative number of micro-units.")
    with transaction.atomic():
        account = _locked_account(tenant)
        before = {"threshold": account.low_balance_threshold, "webhook_url": account.alert_webhook_url}
        account.low_balance_threshold = threshold
        account.low_balance_alerted = False
        if webhook_url is not None:
            if webhook_url:
                from smsplatform.webhooks import OutboundUrlRefused, check_outbound_url

                try:
                    check_outbound_url(webhook_url)  # SSRF: public http(s) only, refused when saved
                except OutboundUrlRefused as exc:
                    raise BillingError(exc.message, code="invalid_webhook_url") from exc
            account.alert_webhook_url = webhook_url
            if webhook_url and not account.alert_webhook_secret:
                from tenants.services import encrypt_secret

                account.alert_webhook_secret = encrypt_secret(secrets.token_hex(32))  # encrypted at rest
        account.save(
            update_fields=["low_balance_threshold", "low_balance_alerted", "alert_webhook_url", "alert_webhook_secret"]
        )
        record_operation(
            actor=actor,
            action="billing.set_low_balance_alert",
            tenant=tenant,
            obj=account,
            before=before,
            after={"threshold": threshold, "webhook_url": account.alert_webhook_url},
        )
    return account


def sign_webhook(*, secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>" (the receiver checks X-Billing-Signature)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def notify_low_balance(*, account_id: int, balance: int, threshold: int) -> dict:
    """Send the alert: e-mail to the tenant's contact and a signed POST to its webhook, if set.
    Called by billing.actors.send_low_balance_alert after the crossing committed."""
    account = Account.objects.select_related("tenant").get(pk=account_id)
    tenant = account.tenant
    subject = f"Low balance: {format_money(balance, account.currency)}"
    text = (
        f"The balance of {tenant.name} is {format_money(balance, account.currency)}, below your alert "
        f"threshold of {format_money(threshold, account.currency)}. Please top up to keep sending."
    )
    sent = {"email": False, "webhook": None}
    from tenants.duty_notices import notify_low_balance as to_inbox  # tenants imports billing: lazily

    to_inbox(
        tenant=tenant,
        balance_text=format_money(balance, account.currency),
        threshold_text=format_money(threshold, account.currency),
        crossing_id=f"{account.pk}:{threshold}:{timezone.now():%Y%m%d%H}",
    )
    if tenant.contact_email:
        send_mail(subject, text, None, [tenant.contact_email])
        sent["email"] = True
    if account.alert_webhook_url:
        payload = {
            "event": "billing.low_balance",
            "tenant": tenant.schema_name,
            "balance": balance,
            "threshold": threshold,
            "currency": account.currency,
        }
        from smsplatform.webhooks import OutboundUrlRefused

        try:
            sent["webhook"] = post_signed_webhook(
                url=account.alert_webhook_url, secret=webhook_secret_of(account), payload=payload
            )
        except OutboundUrlRefused as exc:  # refused again at call time (SSRF): no retry helps
            logger.warning("low-balance webhook of %s refused: %s", tenant.schema_name, exc.message)
            sent["webhook"] = "blocked"
    return sent


def webhook_secret_of(account: Account) -> str:
    """The webhook's HMAC key in clear (stored encrypted, R-TEN-2)."""
    from tenants.services import decrypt_secret

    return decrypt_secret(account.alert_webhook_secret)


def post_signed_webhook(*, url: str, secret: str, payload: dict) -> int:
    """POST through the shared outbound check (smsplatform.webhooks: public address, no redirect)."""
    from smsplatform import webhooks

    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(timezone.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-Billing-Timestamp": timestamp,
        "X-Billing-Signature": sign_webhook(secret=secret, timestamp=timestamp, body=body),
    }
    return webhooks.post(url, body=body, headers=headers, timeout=settings.BILLING_WEBHOOK_TIMEOUT_SECONDS)
