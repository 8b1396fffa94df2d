"""The send gate check_message (R-CMP-1..9) and the volume counters (R-CMP-6 caps, R-CMP-8 spikes)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import tenant_context

from smsplatform import config_cache, numbers
from tenants.models import Tenant, TenantState

from .. import checks as pure
from ..models import (
    ComplianceSettings,
    Consent,
    ConsentPolicy,
    GlobalBlock,
    MessageType,
    OptOut,
    ReviewStatus,
    Signature,
    Template,
    TemplateVersion,
    VolumeCounter,
)
from ..scanner import Scanner
from ._base import InvalidParameter, SendingSuspended, SignatureNotApproved, TemplateNotApproved, VolumeCapped, _now
from .content import get_scanner
from .countries import _content_refusal, _country_refusal, _country_rules, _CountryRules
from .options import settings_for
from .reviews import _link_domains_for

logger = logging.getLogger(__name__)


# --- the send gate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientVerdict:
    number: str
    allowed: bool
    reason: str | None = None
    detail: str = ""
    content: str = ""
    held: bool = False
    # For operators only (never shown to the sender): the banned-content rule behind a refusal or hold.
    rule: str = ""


@dataclass(frozen=True)
class CheckResult:
    signature_id: int
    template_id: int
    template_version: int
    message_type: str
    verdicts: list[RecipientVerdict]


def _ensure_can_send(tenant: Tenant) -> None:
    # Issue 17: the state from the per-process cache; a state change bumps the "tenants"
    # counter in its own transaction, and an API request re-reads the counters first.
    state = config_cache.get(
        "tenants",
        ("state", tenant.pk),
        lambda: Tenant.objects.filter(pk=tenant.pk).values_list("state", flat=True).first(),
    )
    if state == TenantState.ACTIVE:
        return
    if state == TenantState.SUSPENDED:
        raise SendingSuspended()
    if state == TenantState.TERMINATED:
        raise SendingSuspended("This account is terminated and can never send again.", code="tenant_terminated")
    raise SendingSuspended(f"This account is {state}: it cannot send.", code="tenant_not_active")


def _render_and_scan(
    version: TemplateVersion, signature_text: str, params, scanner: Scanner, link_domains: frozenset[str]
) -> tuple[str | None, str, str, bool, str]:
    """(reason, detail, content, held, rule) for one parameter set. `detail` goes to the sender:
    the category, never the rule (R-CMP-3); `rule` is for operators."""
    try:
        body = pure.render(body=version.body, variables=version.variables, params=params, link_domains=link_domains)
    except pure.ParameterError as exc:
        return "invalid_parameter", str(exc), "", False, ""
    content = f"【{signature_text}】{body}"
    result = scanner.scan(content)
    if result.reject is not None:  # R-CMP-3 at send time
        return "banned_content", result.reject.public_detail, "", False, result.reject.detail
    if result.hold is not None:
        return None, result.hold.public_detail, content, True, result.hold.detail
    return None, "", content, False, ""


def check_message(
    *,
    tenant,
    signature: str,
    template: str,
    params: dict | list[dict],
    recipients: list[str],
    count_volume: bool = True,
) -> CheckResult:
    """The one gate the send path calls (contracts.md). Whole-request refusals raise; per-recipient
    decisions come back as verdicts in the order of `recipients`.

    R-CMP-8 spike: when this hour's volume goes over the tenant's spike multiple of its usual hourly
    rate, the request is NOT refused: every allowed verdict comes back with held=True (manual review).
    count_volume=False leaves the counting to the caller (the API intake counts late, with
    count_volume_of(), so the tenant's counter rows are locked only for the end of its transaction).

    Filings, settings, country rules and the scanner come from per-process caches
    (smsplatform/config_cache.py, issue 17); numbers (blocks, opt-outs, consent) are always read.
    """
    # Only the volume count writes: without it the gate only reads and needs no savepoint (issue 17).
    with transaction.atomic() if count_volume else contextlib.nullcontext():
        _ensure_can_send(tenant)  # R-CMP-6 suspend / terminate
        sig = config_cache.get(
            "filings",
            ("signature", tenant.pk, signature),
            lambda: Signature.objects.filter(tenant_id=tenant.pk, text=signature, status=ReviewStatus.APPROVED).first(),
        )
        if sig is None:
            raise SignatureNotApproved(details={"signature": signature})  # R-CMP-1
        tpl = config_cache.get(
            "filings",
            ("template", tenant.pk, template),
            lambda: (
                Template.objects.select_related("approved_version")
                .filter(tenant_id=tenant.pk, code=template, approved_version__isnull=False)
                .first()
            ),
        )
        if tpl is None:
            raise TemplateNotApproved(details={"template": template})  # R-CMP-2
        version = tpl.approved_version
        per_recipient = isinstance(params, list)
        if per_recipient and len(params) != len(recipients):
            raise InvalidParameter(
                "Give one parameter object per recipient, or one for all.",
                details={"recipients": len(recipients), "params": len(params)},
            )
        options = config_cache.get("compliance_settings", tenant.pk, lambda: settings_for(tenant=tenant))
        home = settings.COMPLIANCE_HOME_COUNTRY

        # R-CMP-5: every commercial type needs consent, not only marketing. A marketing consent
        # covers member-service messages too (the broader agreement); otherwise the scope must match.
        commercial = tpl.message_type in pure.COMMERCIAL_TYPES
        scopes = sorted({tpl.message_type, MessageType.MARKETING})
        with _in_schema_of(tenant):
            blocked, opted_out = _blocked_and_opted_out(recipients)  # R-CMP-4, one statement
            consented: set[str] = set()
            if commercial and options.consent_policy == ConsentPolicy.STRICT:
                consented = set(
                    Consent.objects.filter(
                        number__any=recipients, scope__in=scopes, withdrawn_at__isnull=True
                    ).values_list("number", flat=True)
                )
        scanner = config_cache.get("rules", "scanner", get_scanner)  # R-CMP-3, rebuilt on a new rule set
        domains = _link_domains_for(version)  # no query unless the template has a url variable
        shared = None if per_recipient else _render_and_scan(version, sig.text, params, scanner, domains)
        country_of = _country_lookup(home)
        enabled_countries = set(options.enabled_countries or [])
        rules: dict[str, _CountryRules] | None = None  # R-CMP-9: loaded at the first foreign recipient
        content_refusals: dict[tuple[str, str], tuple[str, str] | None] = {}
        now = _now()
        verdicts: list[RecipientVerdict] = []
        for index, number in enumerate(recipients):
            rule = None
            if number in blocked:
                verdicts.append(
                    RecipientVerdict(number, False, "globally_blocked", "On the platform block list (R-CMP-4).")
                )
                continue
            if number in opted_out:
                verdicts.append(RecipientVerdict(number, False, "opted_out", "The recipient opted out (R-CMP-4)."))
                continue
            if commercial and options.consent_policy == ConsentPolicy.STRICT and number not in consented:
                verdicts.append(
                    RecipientVerdict(number, False, "no_consent", f"No {tpl.message_type} consent on record (R-CMP-5).")
                )
                continue
            country = country_of(number)
            if country is None:
                verdicts.append(RecipientVerdict(number, False, "invalid_number", "Not a valid E.164 number."))
                continue
            if tpl.message_type == MessageType.INTERNATIONAL:
                if country == home:
                    verdicts.append(
                        RecipientVerdict(
                            number, False, "domestic_number", "International templates send abroad only (R-CMP-9)."
                        )
                    )
                    continue
                if rules is None:
                    rules = config_cache.get("countries", tenant.pk, lambda: _country_rules(tenant))
                rule = rules.get(country)
                refusal = _country_refusal(
                    country=country, rule=rule, enabled_countries=enabled_countries, sender=sig.text
                )
                if refusal is not None:
                    verdicts.append(RecipientVerdict(number, False, *refusal))
                    continue
            elif country != home:
                verdicts.append(
                    RecipientVerdict(
                        number,
                        False,
                        "international_template_required",
                        f"{country} is abroad: use an approved international template (R-CMP-9).",
                    )
                )
                continue
            reason, detail, content, held, matched_rule = (
                shared if shared is not None else _render_and_scan(version, sig.text, params[index], scanner, domains)
            )
            if reason is not None:
                verdicts.append(RecipientVerdict(number, False, reason, detail, rule=matched_rule))
                continue
            if rule is not None:
                key = (country, content)
                if key not in content_refusals:  # one check per country and text, not per recipient
                    content_refusals[key] = _content_refusal(country=country, rule=rule, content=content, now=now)
                if content_refusals[key] is not None:
                    verdicts.append(RecipientVerdict(number, False, *content_refusals[key]))
                    continue
            verdicts.append(RecipientVerdict(number, True, None, detail, content, held, matched_rule))

        if count_volume:
            verdicts = count_volume_of(tenant=tenant, verdicts=verdicts)
    return CheckResult(
        signature_id=sig.pk,
        template_id=tpl.pk,
        template_version=version.number,
        message_type=tpl.message_type,
        verdicts=verdicts,
    )


def _in_schema_of(tenant: Tenant):
    """tenant_context(), or nothing when the connection is already in that schema (the API):
    entering and leaving would cost two SET search_path statements (issue 17)."""
    if connection.schema_name == tenant.schema_name:
        return contextlib.nullcontext()
    return tenant_context(tenant)


def _blocked_and_opted_out(numbers: list[str]) -> tuple[set[str], set[str]]:
    """The platform block list (public) and the tenant's opt-outs (its schema, the current
    search_path) for these numbers in ONE statement (R-CMP-4)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT 'b', number FROM public.{GlobalBlock._meta.db_table} WHERE number = ANY(%s)
                UNION ALL
                SELECT 'o', number FROM {OptOut._meta.db_table} WHERE number = ANY(%s)""",  # noqa: S608 - model meta
            [numbers, numbers],
        )
        rows = cursor.fetchall()
    return {n for k, n in rows if k == "b"}, {n for k, n in rows if k == "o"}


# The detail text of a spike hold carries the rule id: tenants.reconfirmation finds the messages
# the tenant may release by it (a content hold stays with the reviewers).
SPIKE_MARK = "R-CMP-8"


def count_volume(*, tenant: Tenant, count: int) -> bool:
    """Add `count` accepted messages to the tenant's volume: raises VolumeCapped over a cap
    (R-CMP-6), True on a spike (R-CMP-8: hold them for review). Locks the counter rows until
    commit, so the API intake calls it late (issue 17)."""
    options = config_cache.get("compliance_settings", tenant.pk, lambda: settings_for(tenant=tenant))
    return bool(count) and _count_volume(tenant=tenant, options=options, count=count)


def count_volume_of(*, tenant: Tenant, verdicts: list[RecipientVerdict]) -> list[RecipientVerdict]:
    """Count the allowed verdicts in the tenant's volume (R-CMP-6 caps raise VolumeCapped); on a
    spike (R-CMP-8) they come back held for review. Locks the tenant's counter rows until commit."""
    if not count_volume(tenant=tenant, count=sum(1 for verdict in verdicts if verdict.allowed)):
        return verdicts
    return [
        RecipientVerdict(
            v.number, True, None, f"Volume spike: held for review ({SPIKE_MARK}).", v.content, True, v.rule
        )
        if v.allowed
        else v
        for v in verdicts
    ]


def _country_lookup(home: str):
    """country_of(number) with a fast path for the home country when its calling code is its own
    (+86 is only CN): no phone-number parsing for the bulk of domestic traffic."""
    import phonenumbers

    code = phonenumbers.country_code_for_region(home)
    prefix = f"+{code}" if code and phonenumbers.region_codes_for_country_code(code) == (home,) else None

    def country_of(number: str) -> str | None:
        if prefix and number.startswith(prefix) and number[1:].isdigit():
            return home
        return numbers.country_of(number)

    return country_of


def _buckets(now: datetime) -> dict[str, datetime]:
    minute = now.replace(second=0, microsecond=0)
    return {"minute": minute, "hour": minute.replace(minute=0), "day": minute.replace(hour=0, minute=0)}


def _count_volume(*, tenant: Tenant, options: ComplianceSettings, count: int) -> bool:
    """Add `count` to the tenant's counters; refuse over a cap (R-CMP-6), report a spike (R-CMP-8)."""
    buckets = _buckets(_now().astimezone(UTC))
    table = VolumeCounter._meta.db_table
    window = settings.COMPLIANCE_SPIKE_BASELINE_HOURS
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # One statement (issue 17): the counts and the baseline of the past `window` hours (earlier
        # buckets only, which this INSERT never touches, so the CTE's snapshot is exact).
        cursor.execute(
            f"""WITH counted AS (
                    INSERT INTO public.{table} (tenant_id, granularity, bucket_start, count)
                    VALUES (%s, 'minute', %s, %s), (%s, 'hour', %s, %s), (%s, 'day', %s, %s)
                    ON CONFLICT (tenant_id, granularity, bucket_start)
                    DO UPDATE SET count = {table}.count + EXCLUDED.count
                    RETURNING granularity, count)
                SELECT granularity, count, (
                    SELECT COALESCE(SUM(count), 0) FROM public.{table}
                    WHERE tenant_id = %s AND granularity = 'hour' AND bucket_start >= %s AND bucket_start < %s)
                FROM counted""",  # noqa: S608 - table name from model meta
            [
                *(tenant.pk, buckets["minute"], count, tenant.pk, buckets["hour"], count),
                *(tenant.pk, buckets["day"], count),
                *(tenant.pk, buckets["hour"] - timedelta(hours=window), buckets["hour"]),
            ],
        )
        rows = cursor.fetchall()
        totals = {granularity: total for granularity, total, _ in rows}
        for granularity, cap in (("minute", options.per_minute_cap), ("day", options.per_day_cap)):
            if cap is not None and totals[granularity] > cap:
                raise VolumeCapped(
                    f"The account may send {cap} messages per {granularity} (R-CMP-6).",
                    details={"cap": cap, "per": granularity, "would_be": totals[granularity]},
                )
        multiple = options.spike_multiple or settings.COMPLIANCE_SPIKE_MULTIPLE
        if not multiple:
            return False
        usual = rows[0][2] / window
        return totals["hour"] > multiple * max(usual, settings.COMPLIANCE_SPIKE_MIN_HOURLY)
