"""The gate again when a message is about to go (issue 10, R-TEN-3, R-CMP-1..4, R-CMP-9): what was
true at acceptance may not be by the time a queued or scheduled message is claimed for sending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from tenants.models import Tenant, TenantState

from .. import checks as pure
from ..models import GlobalBlock, OptOut, ReviewStatus, Signature, TemplateVersion
from .countries import _country_rules

__all__ = ["SendTimeVerdict", "send_time_verdicts"]


@dataclass(frozen=True)
class SendTimeVerdict:
    reason: str  # a stable code, stored as the message's reason
    detail: str
    wait: bool = False  # quiet hours: not refused, the message waits for the window to end


def send_time_verdicts(*, tenant: Tenant, messages: list, now: datetime) -> dict[int, SendTimeVerdict]:
    """{message id: verdict} for the claimed messages that may not go now; the others go.

    Call in the tenant's schema. A constant number of queries whatever the batch size: the
    tenant row the caller holds, one per kind of filing, opt-outs, the block list, country rules."""
    if tenant.state != TenantState.ACTIVE:
        verdict = SendTimeVerdict(f"tenant_{tenant.state}", f"The account is {tenant.state} (R-TEN-3).")
        return {m.pk: verdict for m in messages}
    verdicts: dict[int, SendTimeVerdict] = {}
    signature_ids = {m.signature_id for m in messages if m.signature_id}
    approved_signatures = set(
        Signature.objects.filter(pk__in=signature_ids, status=ReviewStatus.APPROVED).values_list("pk", flat=True)
    )
    versions = {(m.template_id, m.template_version) for m in messages if m.template_id}
    approved_versions = set()
    if versions:
        approved_versions = set(
            TemplateVersion.objects.filter(
                template_id__in={t for t, _ in versions}, status=ReviewStatus.APPROVED
            ).values_list("template_id", "number")
        )
    numbers = {m.recipient for m in messages}
    opted_out = set(OptOut.objects.filter(number__any=numbers).values_list("number", flat=True))
    blocked = set(GlobalBlock.objects.filter(number__any=numbers).values_list("number", flat=True))
    countries = None
    for m in messages:
        if m.signature_id and m.signature_id not in approved_signatures:
            verdicts[m.pk] = SendTimeVerdict("signature_not_approved", "The signature is no longer approved (R-CMP-1).")
        elif m.template_id and (m.template_id, m.template_version) not in approved_versions:
            verdicts[m.pk] = SendTimeVerdict("template_not_approved", "The template is no longer approved (R-CMP-2).")
        elif m.recipient in blocked:
            verdicts[m.pk] = SendTimeVerdict("blocked_number", "The number is on the platform block list (R-CMP-4).")
        elif m.recipient in opted_out:
            verdicts[m.pk] = SendTimeVerdict("opted_out", "The recipient opted out (R-CMP-4).")
        else:
            if countries is None:
                countries = _country_rules(tenant)
            rule = countries.get(m.country)
            if rule is not None and rule.quiet_start is not None:
                local = now.astimezone(ZoneInfo(rule.zone))
                if pure.in_quiet_hours(local=local.time(), start=rule.quiet_start, end=rule.quiet_end):
                    verdicts[m.pk] = SendTimeVerdict(
                        "quiet_hours", f"Quiet hours in {m.country} ({rule.zone}) (R-CMP-9).", wait=True
                    )
    return verdicts
