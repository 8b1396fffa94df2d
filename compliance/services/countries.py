"""R-CMP-9: per-country rules and registered senders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .. import checks as pure
from ..models import (
    COUNTRY_RULE_FIELDS,
    CountryRule,
    RegisteredSender,
    SenderRule,
)
from ._base import ComplianceError
from .options import _jsonable

logger = logging.getLogger(__name__)


# --- R-CMP-9 per-country rules ---------------------------------------------------------------


def country_rule_problem(rule: CountryRule) -> str | None:
    """Why this country rule cannot be saved, or None (form, import and service share it)."""
    if rule.sender_rule not in SenderRule.values:
        return f"Unknown sender rule {rule.sender_rule!r}."
    if rule.max_segments is not None and rule.max_segments < 1:
        return "The maximum number of segments must be at least 1."
    return pure.country_rule_problem(
        country=rule.country,
        home=settings.COMPLIANCE_HOME_COUNTRY,
        quiet_start=rule.quiet_hours_start,
        quiet_end=rule.quiet_hours_end,
        zone=rule.timezone,
    )


def save_country_rule(*, rule: CountryRule, actor: Actor) -> CountryRule:
    """Create or change a country's rules (admin form); recorded (R-CMP-9, R-AUD-3)."""
    rule.country = (rule.country or "").strip().upper()
    problem = country_rule_problem(rule)
    if problem:
        raise ComplianceError(problem, code="invalid_country_rule", details={"country": rule.country})
    with transaction.atomic():
        created = rule.pk is None
        rule.save()
        record_operation(
            actor=actor,
            action="country_rule.create" if created else "country_rule.update",
            obj=rule,
            after={field: _jsonable(getattr(rule, field)) for field in COUNTRY_RULE_FIELDS},
        )
    return rule


def delete_country_rules(*, rule_ids: list[int], actor: Actor) -> int:
    with transaction.atomic():
        countries = list(CountryRule.objects.filter(pk__in=rule_ids).values_list("country", flat=True))
        deleted, _ = CountryRule.objects.filter(pk__in=rule_ids).delete()
        record_operation(actor=actor, action="country_rule.delete", after={"countries": countries})
    return deleted


def register_sender(
    *, rule: CountryRule, tenant: Tenant, sender_id: str, actor: Actor, note: str = ""
) -> RegisteredSender:
    """Record a sender ID a tenant registered for a country (its signature text) (R-CMP-9)."""
    sender_id = sender_id.strip()
    if not sender_id:
        raise ComplianceError("The sender ID is empty.", code="invalid_field")
    with transaction.atomic():
        sender, created = RegisteredSender.objects.get_or_create(
            rule=rule, tenant=tenant, sender_id=sender_id, defaults={"note": note, "created_by": actor.label}
        )
        if created:
            record_operation(
                actor=actor,
                action="registered_sender.add",
                tenant=tenant,
                obj=sender,
                after={"country": rule.country, "sender_id": sender_id},
            )
    return sender


def unregister_sender(*, sender: RegisteredSender, actor: Actor) -> None:
    with transaction.atomic():
        after = {"country": sender.rule.country, "sender_id": sender.sender_id}
        tenant = sender.tenant
        sender.delete()
        record_operation(actor=actor, action="registered_sender.remove", tenant=tenant, after=after)


@dataclass(frozen=True)
class _CountryRules:
    """One country's rules as check_message uses them (plus this tenant's registered senders)."""

    enabled: bool
    sender_rule: str
    opt_out_text_required: bool
    quiet_start: object
    quiet_end: object
    zone: str
    max_segments: int | None
    senders: frozenset[str]


def _country_rules(tenant: Tenant) -> dict[str, _CountryRules]:
    """Every country rule with this tenant's registered senders: ONE query (R-CMP-9)."""
    from django.contrib.postgres.expressions import ArraySubquery
    from django.db.models import OuterRef

    senders = RegisteredSender.objects.filter(rule=OuterRef("pk"), tenant_id=tenant.pk).values("sender_id")
    rows = CountryRule.objects.annotate(senders=ArraySubquery(senders)).values_list(
        "country",
        "enabled",
        "sender_rule",
        "opt_out_text_required",
        "quiet_hours_start",
        "quiet_hours_end",
        "timezone",
        "max_segments",
        "senders",
    )
    return {row[0]: _CountryRules(*row[1:8], frozenset(row[8] or ())) for row in rows}


def _country_refusal(
    *, country: str, rule: _CountryRules | None, enabled_countries: set[str], sender: str
) -> tuple[str, str] | None:
    """(reason, detail) when the destination country refuses this message before rendering (R-CMP-9)."""
    if (rule is None and settings.COMPLIANCE_COUNTRY_WITHOUT_RULE == "refuse") or (
        rule is not None and not rule.enabled
    ):
        return "country_disabled", f"The platform does not send to {country} (R-CMP-9)."
    if country not in enabled_countries:
        return "country_not_enabled", f"Sending to {country} is not enabled (R-CMP-9)."
    if rule is None:
        return None
    if rule.sender_rule == SenderRule.ALPHANUMERIC and not pure.is_alphanumeric_sender(sender):
        return "sender_not_allowed", (
            f"{country} takes the signature as an alphanumeric sender ID: 1-11 Latin letters or digits (R-CMP-9)."
        )
    if rule.sender_rule == SenderRule.REGISTERED and sender not in rule.senders:
        return "sender_not_allowed", f"{country} accepts pre-registered sender IDs only: {sender!r} is not (R-CMP-9)."
    return None


def _content_refusal(*, country: str, rule: _CountryRules, content: str, now: datetime) -> tuple[str, str] | None:
    """(reason, detail) when the rendered message breaks the country's content rules (R-CMP-9)."""
    if rule.opt_out_text_required and not pure.has_unsubscribe_instruction(content):
        return "opt_out_text_missing", f"Messages to {country} must carry an opt-out instruction (R-CMP-9)."
    if rule.max_segments is not None:
        from smsplatform.sms_text import count_segments

        segments = count_segments(content).segments
        if segments > rule.max_segments:
            return "too_many_segments", (
                f"Messages to {country} may have at most {rule.max_segments} segments, this one has {segments} (R-CMP-9)."
            )
    if rule.quiet_start is not None:
        local = now.astimezone(ZoneInfo(rule.zone))
        if pure.in_quiet_hours(local=local.time(), start=rule.quiet_start, end=rule.quiet_end):
            return "quiet_hours", (
                f"No sending to {country} between {rule.quiet_start:%H:%M} and {rule.quiet_end:%H:%M} "
                f"{rule.zone} time (R-CMP-9)."
            )
    return None
