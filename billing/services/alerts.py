"""Low-balance alerts (R-BIL-6): threshold, e-mail and signed webhook (smsplatform.webhooks)."""

from __future__ import annotations

import json
import logging
import secrets

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from smsplatform import webhooks
from smsplatform.crypto import decrypt_secret, encrypt_secret
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
                try:
                    webhooks.check_outbound_url(webhook_url)  # SSRF: public http(s) only, refused when saved
                except webhooks.OutboundUrlRefused as exc:
                    raise BillingError(exc.message, code="invalid_webhook_url") from exc
            account.alert_webhook_url = webhook_url
            if webhook_url and not account.alert_webhook_secret:
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


def notify_low_balance(*, account_id: int, balance: int, threshold: int) -> dict:
    """Send the alert: e-mail to the tenant's contact and a signed POST to its webhook, if set.
    Called by billing.actors.send_low_balance_alert_job after the crossing committed."""
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
        # R-BIL-6: a recorded webhook with its own retries (smsplatform.webhooks): a failure never
        # fails this job, so the e-mail above is not sent again.
        payload = {
            "event": "billing.low_balance",
            "tenant": tenant.schema_name,
            "balance": balance,
            "threshold": threshold,
            "currency": account.currency,
        }
        item = webhooks.record_webhook(
            tenant=tenant,
            url=account.alert_webhook_url,
            event="billing.low_balance",
            body=json.dumps(payload, separators=(",", ":"), sort_keys=True),
            scheme="billing",
            secret_token=account.alert_webhook_secret,
            send_now=True,
        )
        if item.last_error.startswith("blocked:"):  # refused again at call time (SSRF): no retry helps
            logger.warning("low-balance webhook of %s refused: %s", tenant.schema_name, item.last_error)
            sent["webhook"] = "blocked"
        else:
            sent["webhook"] = item.last_status_code or item.state
    return sent


def webhook_secret_of(account: Account) -> str:
    """The webhook's HMAC key in clear (stored encrypted, R-TEN-2)."""
    return decrypt_secret(account.alert_webhook_secret)
