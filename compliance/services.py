"""Every compliance state change, and the send gate check_message (R-CMP-1..9).

Each customer write and operator action is recorded with tenants.services.record_operation (R-AUD-3).
Tenant-schema rows (opt-outs, consents) are touched inside tenant_context(tenant).
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework import status

from smsplatform.db import in_array
from smsplatform.errors import DomainError
from tenants.models import Tenant, TenantState
from tenants.services import Actor, record_operation

from . import links
from . import replies as reply_rules
from . import rules as pure
from .models import (
    COUNTRY_RULE_FIELDS,
    ActionKind,
    BannedRule,
    Complaint,
    ComplaintStatus,
    ComplianceSettings,
    Consent,
    ConsentPolicy,
    CountryRule,
    EnforcementAction,
    GlobalBlock,
    KeywordAction,
    LinkDomain,
    MessageType,
    OptOut,
    OptOutKeyword,
    OptOutRemoval,
    OptOutReview,
    OptOutSource,
    ProtectedBrand,
    RegisteredSender,
    ReplyReviewStatus,
    ReviewStatus,
    RuleAction,
    RuleSetVersion,
    SenderRule,
    Signature,
    SignatureProof,
    Template,
    TemplateVersion,
    Violation,
    VolumeCounter,
)
from .normalise import normalise
from .scanner import Rule, Scanner, ScanResult, validate_pattern

logger = logging.getLogger(__name__)

# --- errors ----------------------------------------------------------------------------------


class ComplianceError(DomainError):
    code = "compliance_error"


class InvalidSignature(ComplianceError):
    code = "invalid_signature"


class InvalidTemplate(ComplianceError):
    code = "invalid_template"


class InvalidParameter(ComplianceError):
    code = "invalid_parameter"


class InvalidNumber(ComplianceError):
    code = "invalid_number"


class InvalidRule(ComplianceError):
    code = "invalid_rule"


class ReviewConflict(ComplianceError):
    code = "review_conflict"
    http_status = status.HTTP_409_CONFLICT


class ReasonRequired(ComplianceError):
    code = "reason_required"
    default_message = "A reason is required."


class SignatureNotApproved(ComplianceError):
    code = "signature_not_approved"
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_message = "The signature is not approved for this account."


class TemplateNotApproved(ComplianceError):
    code = "template_not_approved"
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_message = "The template has no approved version for this account."


class SendingSuspended(ComplianceError):
    code = "sending_suspended"
    http_status = status.HTTP_403_FORBIDDEN
    default_message = "Sending is suspended for this account."


class VolumeCapped(ComplianceError):
    code = "volume_capped"
    http_status = status.HTTP_429_TOO_MANY_REQUESTS
    default_message = "The account's volume cap is reached."


class OptOutRemovalForbidden(ComplianceError):
    code = "optout_removal_forbidden"
    http_status = status.HTTP_403_FORBIDDEN
    default_message = (
        "An opt-out is lifted only by the recipient's own opt-in reply (START) or by an operator (R-CMP-4)."
    )


def _now() -> datetime:
    return timezone.now()


def _number(number: str) -> str:
    try:
        return pure.normalise_number(number)
    except ValueError as exc:
        raise InvalidNumber(f"Not a valid phone number: {number!r}.", details={"number": number}) from exc


# --- R-CMP-1 signatures ----------------------------------------------------------------------


def file_signature(*, tenant: Tenant, text: str, purpose: str, proofs: list, actor: Actor) -> Signature:
    """File a signature for review with its proof documents (R-CMP-1).

    Possible impersonation is flagged for the reviewer: the brand, normalised (look-alikes,
    traditional characters, width, case, spaces), equals one approved for another tenant or
    contains a protected brand (banks, carriers, government bodies, platforms).
    A brand matching a banned rule (R-CMP-3) is rejected at once (reject rule) or flagged (hold rule);
    the tenant is told the category only, the reviewer sees the rule.
    """
    problem = pure.signature_problem(text)
    if problem:
        raise InvalidSignature(problem, details={"text": text})
    if not proofs:
        raise InvalidSignature("At least one proof document is required.", code="proof_required")
    for upload in proofs:
        _check_proof(upload)
    key = signature_match_key(text)
    others = approved_elsewhere(tenant=tenant, match_key=key)
    flags = [f"Already approved for: {', '.join(others)}"] if others else []
    brands = protected_brands_in(text)
    if brands:
        flags.append(f"Names a protected brand: {', '.join(brands)}")
    suspected = bool(others or brands)
    scan = scan_text(text)
    if scan.hold is not None:
        flags.append(f"Banned-content hold rule: {scan.hold.detail}")
    screened = {}
    if scan.reject is not None:
        flags.append(f"Banned-content reject rule: {scan.reject.detail}")
        screened = {
            "status": ReviewStatus.REJECTED,
            "review_reason": scan.reject.public_detail,
            "reviewed_by": "system:screening",
            "reviewed_at": _now(),
        }
    with transaction.atomic():
        try:
            with transaction.atomic():
                signature = Signature.objects.create(
                    tenant=tenant,
                    text=text,
                    match_key=key,
                    purpose=purpose,
                    impersonation_suspected=suspected,
                    flag_detail="\n".join(flags),
                    **screened,
                )
        except IntegrityError as exc:
            raise ReviewConflict(
                "This signature is already pending or approved for your account.", code="signature_exists"
            ) from exc
        for upload in proofs:
            SignatureProof.objects.create(signature=signature, file=upload)
        record_operation(
            actor=actor,
            action="signature.file",
            tenant=tenant,
            obj=signature,
            after={"text": text, "proofs": len(proofs), "impersonation_suspected": suspected},
        )
    return signature


def signature_match_key(text: str) -> str:
    return normalise(text)[:40]


def approved_elsewhere(*, tenant: Tenant, match_key: str) -> list[str]:
    """Names of other tenants holding an approved signature for the same brand (R-CMP-1).

    Compared on the normalised text computed now, not only the stored key: keys stored before the
    normaliser learned traditional characters and look-alikes would otherwise miss."""
    rows = (
        Signature.objects.filter(status=ReviewStatus.APPROVED)
        .exclude(tenant=tenant)
        .values_list("match_key", "text", "tenant__name")
    )
    names = []
    for stored, text, name in rows.iterator(chunk_size=2000):
        if (stored == match_key or signature_match_key(text) == match_key) and name not in names:
            names.append(name)
    return names[:5]


def protected_brands_in(text: str) -> list[str]:
    """Protected brands the (normalised) text contains: 中國銀行, ВigВаnk… (R-CMP-1)."""
    key = normalise(text)
    rows = ProtectedBrand.objects.filter(enabled=True).values_list("name", "match_key")
    return [name for name, brand_key in rows if brand_key and brand_key in key][:5]


BRAND_FIELDS = ("name", "kind", "enabled", "note")


def save_protected_brand(*, brand: ProtectedBrand, actor: Actor) -> ProtectedBrand:
    """Create or change a protected brand (admin); its key is the normalised name (R-CMP-1)."""
    brand.name = (brand.name or "").strip()
    brand.match_key = normalise(brand.name)[:100]
    if len(brand.match_key) < 2:
        raise ComplianceError("A protected brand needs at least two letters or digits.", code="invalid_field")
    clash = ProtectedBrand.objects.filter(match_key=brand.match_key).exclude(pk=brand.pk).first()
    if clash is not None:
        raise ComplianceError(f"{brand.name!r} is the same brand as {clash.name!r}.", code="brand_exists")
    with transaction.atomic():
        created = brand.pk is None
        brand.save()
        record_operation(
            actor=actor,
            action="protected_brand.create" if created else "protected_brand.update",
            obj=brand,
            after={field: getattr(brand, field) for field in BRAND_FIELDS},
        )
    return brand


def delete_protected_brands(*, brand_ids: list[int], actor: Actor) -> int:
    with transaction.atomic():
        names = list(ProtectedBrand.objects.filter(pk__in=brand_ids).values_list("name", flat=True))
        deleted, _ = ProtectedBrand.objects.filter(pk__in=brand_ids).delete()
        record_operation(actor=actor, action="protected_brand.delete", after={"names": names})
    return deleted


PROOF_EXTENSIONS = (".pdf", ".jpg", ".jpeg", ".png")


def _check_proof(upload) -> None:
    name = (getattr(upload, "name", "") or "").lower()
    if not name.endswith(PROOF_EXTENSIONS):
        raise InvalidSignature(
            f"Proof documents must be {', '.join(PROOF_EXTENSIONS)} files.",
            code="invalid_proof",
            details={"file": name},
        )
    if upload.size > settings.COMPLIANCE_PROOF_MAX_BYTES:
        raise InvalidSignature(
            f"A proof document may be at most {settings.COMPLIANCE_PROOF_MAX_BYTES} bytes.",
            code="invalid_proof",
            details={"file": name},
        )


def _review(obj, *, to_status: str, actor: Actor, reason: str, action: str, tenant: Tenant):
    if obj.status != ReviewStatus.PENDING:
        raise ReviewConflict(f"Only pending filings can be reviewed (this one is {obj.status}).")
    before = {"status": obj.status}
    obj.status = to_status
    obj.review_reason = reason
    obj.reviewed_by = actor.label
    obj.reviewed_at = _now()
    obj.save(update_fields=["status", "review_reason", "reviewed_by", "reviewed_at"])
    record_operation(
        actor=actor, action=action, tenant=tenant, obj=obj, reason=reason, before=before, after={"status": to_status}
    )
    return obj


def approve_signature(*, signature: Signature, actor: Actor, reason: str = "") -> Signature:
    """Approve (R-CMP-1). A signature flagged as possible impersonation needs a reason: what proof
    of the right to use the brand the reviewer checked."""
    with transaction.atomic():
        signature = Signature.objects.select_for_update().get(pk=signature.pk)
        if signature.impersonation_suspected and not reason.strip():
            raise ReasonRequired(
                "This signature may impersonate another brand: say which proof you checked.",
                details={"flags": signature.flag_detail},
            )
        return _review(
            signature,
            to_status=ReviewStatus.APPROVED,
            actor=actor,
            reason=reason,
            action="signature.approve",
            tenant=signature.tenant,
        )


def reject_signature(*, signature: Signature, actor: Actor, reason: str) -> Signature:
    if not reason.strip():
        raise ReasonRequired()
    with transaction.atomic():
        signature = Signature.objects.select_for_update().get(pk=signature.pk)
        return _review(
            signature,
            to_status=ReviewStatus.REJECTED,
            actor=actor,
            reason=reason,
            action="signature.reject",
            tenant=signature.tenant,
        )


def withdraw_signature(*, signature: Signature, actor: Actor, reason: str = "") -> Signature:
    """The tenant withdraws a pending or approved signature; it no longer sends."""
    with transaction.atomic():
        signature = Signature.objects.select_for_update().get(pk=signature.pk)
        if signature.status not in (ReviewStatus.PENDING, ReviewStatus.APPROVED):
            raise ReviewConflict(f"A {signature.status} signature cannot be withdrawn.")
        before = {"status": signature.status}
        signature.status = ReviewStatus.WITHDRAWN
        signature.save(update_fields=["status"])
        record_operation(
            actor=actor,
            action="signature.withdraw",
            tenant=signature.tenant,
            obj=signature,
            reason=reason,
            before=before,
            after={"status": signature.status},
        )
    return signature


def _revoke(obj, *, actor: Actor, reason: str, action: str, tenant: Tenant):
    if not reason.strip():
        raise ReasonRequired()
    if obj.status != ReviewStatus.APPROVED:
        raise ReviewConflict(f"Only approved filings can be revoked (this one is {obj.status}).")
    obj.status = ReviewStatus.REVOKED
    obj.revoked_reason, obj.revoked_by, obj.revoked_at = reason, actor.label, _now()
    obj.save(update_fields=["status", "revoked_reason", "revoked_by", "revoked_at"])
    record_operation(
        actor=actor,
        action=action,
        tenant=tenant,
        obj=obj,
        reason=reason,
        before={"status": ReviewStatus.APPROVED},
        after={"status": ReviewStatus.REVOKED},
    )
    return obj


def revoke_signature(*, signature: Signature, actor: Actor, reason: str) -> Signature:
    """An operator takes an approval back (R-CMP-1): check_message refuses it from now on; messages
    already queued are caught by the send-time check of the delivery path."""
    with transaction.atomic():
        signature = Signature.objects.select_for_update().select_related("tenant").get(pk=signature.pk)
        return _revoke(signature, actor=actor, reason=reason, action="signature.revoke", tenant=signature.tenant)


def revoke_template_version(*, version: TemplateVersion, actor: Actor, reason: str) -> TemplateVersion:
    """An operator takes a template version's approval back (R-CMP-2): if it was the sending version
    the template has none until another is approved."""
    with transaction.atomic():
        version = TemplateVersion.objects.select_for_update().select_related("template__tenant").get(pk=version.pk)
        _revoke(version, actor=actor, reason=reason, action="template.revoke", tenant=version.template.tenant)
        Template.objects.filter(pk=version.template_id, approved_version=version).update(approved_version=None)
    return version


# --- R-CMP-2 templates -----------------------------------------------------------------------


def _new_template_code() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "TPL_" + "".join(secrets.choice(alphabet) for _ in range(6))


def _screen_version(version: TemplateVersion, *, message_type: str, actor: Actor) -> TemplateVersion:
    """Filing-time checks that decide without a human: banned content (R-CMP-3) and the
    unsubscribe instruction of every commercial type (R-CMP-4), which must name a keyword the
    platform recognises. Reject → auto-rejected (the tenant sees the category, the reviewer the
    rule in `flags`); hold → flagged."""
    problems = []
    result = scan_text(pure.VARIABLE_RE.sub(" ", version.body))
    flags = []
    if result.reject is not None:
        problems.append(result.reject.public_detail)
        flags.append(
            {"rule_id": result.reject.rule.id, "category": result.reject.category, "detail": result.reject.detail}
        )
    if message_type in pure.COMMERCIAL_TYPES:
        if not pure.has_unsubscribe_instruction(version.body):
            problems.append(
                f"{MessageType(message_type).label} templates must carry an unsubscribe instruction "
                "(e.g. 回T退订 / Reply STOP) (R-CMP-4)."
            )
        unknown = reply_rules.unrecognised_instruction_keywords(version.body, reply_keywords())
        if unknown:
            problems.append(
                f"The unsubscribe instruction names {', '.join(repr(w) for w in unknown)}: a reply of it is not "
                "a recognised opt-out keyword (use e.g. T, TD, N, 退订, STOP) (R-CMP-4)."
            )
    if result.hold is not None:
        flags.append({"rule_id": result.hold.rule.id, "category": result.hold.category, "detail": result.hold.detail})
    if flags:
        version.flags = flags
    if problems:
        version.status = ReviewStatus.REJECTED
        version.review_reason = " ".join(problems)
        version.reviewed_by = "system:screening"
        version.reviewed_at = _now()
    version.save()
    return version


def file_template(
    *, tenant: Tenant, name: str, message_type: str, body: str, variables: dict, actor: Actor
) -> Template:
    """File a new template (version 1) for review (R-CMP-2)."""
    if message_type not in MessageType.values:
        raise InvalidTemplate(f"Unknown template type {message_type!r}.", details={"allowed": MessageType.values})
    try:
        clean_vars = pure.check_definition(body=body, variables=variables, message_type=message_type)
    except pure.TemplateDefinitionError as exc:
        raise InvalidTemplate(str(exc)) from exc
    with transaction.atomic():
        for _attempt in range(5):
            code = _new_template_code()
            if not Template.objects.filter(code=code).exists():
                break
        template = Template.objects.create(tenant=tenant, code=code, name=name, message_type=message_type)
        version = _screen_version(
            TemplateVersion(template=template, number=1, body=body, variables=clean_vars),
            message_type=message_type,
            actor=actor,
        )
        record_operation(
            actor=actor,
            action="template.file",
            tenant=tenant,
            obj=template,
            after={"code": code, "version": 1, "status": version.status, "type": message_type},
        )
    return template


def revise_template(
    *, template: Template, body: str, variables: dict, actor: Actor, name: str | None = None
) -> TemplateVersion:
    """File a new version; the approved one (if any) keeps sending until this one is approved."""
    try:
        clean_vars = pure.check_definition(body=body, variables=variables, message_type=template.message_type)
    except pure.TemplateDefinitionError as exc:
        raise InvalidTemplate(str(exc)) from exc
    with transaction.atomic():
        template = Template.objects.select_for_update().get(pk=template.pk)
        # A newer filing replaces a still-pending one: it is withdrawn.
        template.versions.filter(status=ReviewStatus.PENDING).update(status=ReviewStatus.WITHDRAWN)
        last = template.versions.order_by("-number").values_list("number", flat=True).first() or 0
        if name:
            template.name = name
            template.save(update_fields=["name"])
        version = _screen_version(
            TemplateVersion(template=template, number=last + 1, body=body, variables=clean_vars),
            message_type=template.message_type,
            actor=actor,
        )
        record_operation(
            actor=actor,
            action="template.revise",
            tenant=template.tenant,
            obj=version,
            after={"code": template.code, "version": version.number, "status": version.status},
        )
    return version


def approve_template_version(*, version: TemplateVersion, actor: Actor, reason: str = "") -> TemplateVersion:
    """Approve a version: it becomes the one that sends (R-CMP-2)."""
    with transaction.atomic():
        version = TemplateVersion.objects.select_for_update().select_related("template__tenant").get(pk=version.pk)
        _review(
            version,
            to_status=ReviewStatus.APPROVED,
            actor=actor,
            reason=reason,
            action="template.approve",
            tenant=version.template.tenant,
        )
        Template.objects.filter(pk=version.template_id).update(approved_version=version)
    return version


def reject_template_version(*, version: TemplateVersion, actor: Actor, reason: str) -> TemplateVersion:
    if not reason.strip():
        raise ReasonRequired()
    with transaction.atomic():
        version = TemplateVersion.objects.select_for_update().select_related("template__tenant").get(pk=version.pk)
        return _review(
            version,
            to_status=ReviewStatus.REJECTED,
            actor=actor,
            reason=reason,
            action="template.reject",
            tenant=version.template.tenant,
        )


def render(*, template: Template, params: dict, version: TemplateVersion | None = None) -> str:
    """render(template, params): the approved version (or the given one) filled in; every parameter
    checked against its kind and length, unknown or missing ones refused (R-CMP-2)."""
    version = version or template.approved_version
    if version is None:
        raise TemplateNotApproved(details={"template": template.code})
    return render_template(version=version, params=params)


def render_template(*, version: TemplateVersion, params: dict) -> str:
    """Render one version: every parameter checked against its kind and length (R-CMP-2)."""
    domains = _link_domains_for(version)
    try:
        return pure.render(body=version.body, variables=version.variables, params=params, link_domains=domains)
    except pure.ParameterError as exc:
        raise InvalidParameter(str(exc), details={"parameter": exc.parameter}) from exc


def _link_domains_for(version: TemplateVersion) -> frozenset[str]:
    """The tenant's registered link domains, read only when the version has a url variable."""
    if not any(spec.get("kind") == "url" for spec in (version.variables or {}).values()):
        return frozenset()
    tenant_id = Template.objects.filter(pk=version.template_id).values_list("tenant_id", flat=True).first()
    return frozenset(LinkDomain.objects.filter(tenant_id=tenant_id).values_list("domain", flat=True))


def register_link_domain(*, tenant: Tenant, domain: str, actor: Actor, note: str = "") -> LinkDomain:
    """Allow `url` parameters of this tenant to point to `domain` and its subdomains (R-CMP-2)."""
    key = links.domain_key(domain)
    if key is None:
        raise ComplianceError(f"{domain!r} is not a domain name.", code="invalid_domain", details={"domain": domain})
    if links.is_shortener(key):
        raise ComplianceError("Link shorteners hide the destination and cannot be registered.", code="invalid_domain")
    with transaction.atomic():
        row, created = LinkDomain.objects.get_or_create(
            tenant=tenant, domain=key, defaults={"note": note, "created_by": actor.label}
        )
        if created:
            record_operation(actor=actor, action="link_domain.add", tenant=tenant, obj=row, after={"domain": key})
    return row


def remove_link_domain(*, row: LinkDomain, actor: Actor, reason: str = "") -> None:
    with transaction.atomic():
        tenant, domain = row.tenant, row.domain
        row.delete()
        record_operation(
            actor=actor, action="link_domain.remove", tenant=tenant, reason=reason, after={"domain": domain}
        )


# --- R-CMP-3 banned-content rules and the cached scanner -------------------------------------

_scanner_lock = threading.Lock()
_scanner: Scanner | None = None
_scanner_stamp: uuid.UUID | None = None


def bump_rules_version() -> None:
    """Mark the rule set changed: every process rebuilds its scanner on its next check."""
    stamp = uuid.uuid4()
    if not RuleSetVersion.objects.filter(pk=1).update(stamp=stamp, updated_at=_now()):
        RuleSetVersion.objects.update_or_create(pk=1, defaults={"stamp": stamp})


def get_scanner() -> Scanner:
    """The compiled scanner of the enabled rules; one primary-key read to know it is current."""
    global _scanner, _scanner_stamp
    stamp = RuleSetVersion.objects.filter(pk=1).values_list("stamp", flat=True).first()
    if _scanner is not None and stamp == _scanner_stamp:
        return _scanner
    with _scanner_lock:
        rows = BannedRule.objects.filter(enabled=True).values_list(
            "id", "kind", "pattern", "category", "action", "max_gap"
        )
        scanner = Scanner([Rule(*row) for row in rows])
        _scanner, _scanner_stamp = scanner, stamp
    return scanner


def scan_text(text: str) -> ScanResult:
    return get_scanner().scan(text)


RULE_FIELDS = ("kind", "pattern", "category", "action", "max_gap", "enabled", "note")


def save_banned_rule(*, rule: BannedRule, actor: Actor) -> BannedRule:
    """Create or update a rule (admin form) and invalidate the scanners (R-CMP-3)."""
    problem = validate_pattern(kind=rule.kind, pattern=rule.pattern, max_gap=rule.max_gap)
    if problem:
        raise InvalidRule(problem)
    with transaction.atomic():
        created = rule.pk is None
        rule.save()
        bump_rules_version()
        record_operation(
            actor=actor,
            action="banned_rule.create" if created else "banned_rule.update",
            obj=rule,
            after={field: getattr(rule, field) for field in RULE_FIELDS},
        )
    return rule


def create_banned_rule(
    *,
    pattern: str,
    category: str,
    actor: Actor,
    kind: str = "keyword",
    action: str = RuleAction.REJECT,
    enabled: bool = True,
    note: str = "",
    max_gap: int = 6,
) -> BannedRule:
    return save_banned_rule(
        rule=BannedRule(
            kind=kind, pattern=pattern, category=category, action=action, enabled=enabled, note=note, max_gap=max_gap
        ),
        actor=actor,
    )


def delete_banned_rules(*, rule_ids: list[int], actor: Actor) -> int:
    with transaction.atomic():
        deleted, _ = BannedRule.objects.filter(pk__in=rule_ids).delete()
        bump_rules_version()
        record_operation(actor=actor, action="banned_rule.delete", after={"ids": list(rule_ids)})
    return deleted


def set_rules_enabled(*, rule_ids: list[int], enabled: bool, actor: Actor) -> int:
    with transaction.atomic():
        changed = BannedRule.objects.filter(pk__in=rule_ids).update(enabled=enabled, updated_at=_now())
        bump_rules_version()
        record_operation(
            actor=actor,
            action="banned_rule.enable" if enabled else "banned_rule.disable",
            after={"ids": list(rule_ids)},
        )
    return changed


# --- settings --------------------------------------------------------------------------------


def settings_for(*, tenant: Tenant) -> ComplianceSettings:
    """The tenant's compliance settings (an unsaved default row when none was set)."""
    found = ComplianceSettings.objects.filter(tenant_id=tenant.pk).first()
    return found or ComplianceSettings(tenant_id=tenant.pk)


SETTINGS_FIELDS = (
    "consent_policy",
    "per_minute_cap",
    "per_day_cap",
    "spike_multiple",
    "enabled_countries",
    "rectification_deadline",
)


def update_compliance_settings(*, tenant: Tenant, changes: dict, actor: Actor, reason: str = "") -> ComplianceSettings:
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ComplianceError(f"Not compliance settings: {', '.join(sorted(unknown))}.", code="invalid_field")
    if "enabled_countries" in changes:
        changes["enabled_countries"] = sorted({str(c).upper() for c in changes["enabled_countries"]})
    if "consent_policy" in changes and changes["consent_policy"] not in ConsentPolicy.values:
        raise ComplianceError("Unknown consent policy.", code="invalid_field")
    with transaction.atomic():
        row, _ = ComplianceSettings.objects.select_for_update().get_or_create(tenant=tenant)
        before = {field: _jsonable(getattr(row, field)) for field in changes}
        if "rectification_deadline" in changes and changes["rectification_deadline"] != row.rectification_deadline:
            # A new deadline starts a new rectification: not done, not escalated (R-CMP-6).
            row.rectification_done_at, row.rectification_done_by, row.rectification_escalated_at = None, "", None
        for field, value in changes.items():
            setattr(row, field, value)
        row.save()
        record_operation(
            actor=actor,
            action="compliance_settings.update",
            tenant=tenant,
            obj=row,
            reason=reason,
            before=before,
            after={field: _jsonable(value) for field, value in changes.items()},
        )
    return row


def _jsonable(value):
    return value.isoformat() if isinstance(value, datetime | time) else value


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
        from billing.rules import count_segments

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
    state = Tenant.objects.filter(pk=tenant.pk).values_list("state", flat=True).first()
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
    *, tenant, signature: str, template: str, params: dict | list[dict], recipients: list[str]
) -> CheckResult:
    """The one gate the send path calls (contracts.md). Whole-request refusals raise; per-recipient
    decisions come back as verdicts in the order of `recipients`.

    R-CMP-8 spike: when this hour's volume goes over the tenant's spike multiple of its usual hourly
    rate, the request is NOT refused: every allowed verdict comes back with held=True (manual review).
    """
    with transaction.atomic():
        _ensure_can_send(tenant)  # R-CMP-6 suspend / terminate
        sig = Signature.objects.filter(tenant_id=tenant.pk, text=signature, status=ReviewStatus.APPROVED).first()
        if sig is None:
            raise SignatureNotApproved(details={"signature": signature})  # R-CMP-1
        tpl = (
            Template.objects.select_related("approved_version")
            .filter(tenant_id=tenant.pk, code=template, approved_version__isnull=False)
            .first()
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
        options = settings_for(tenant=tenant)
        home = settings.COMPLIANCE_HOME_COUNTRY

        blocked = set(GlobalBlock.objects.filter(number__in=in_array(recipients)).values_list("number", flat=True))
        # R-CMP-5: every commercial type needs consent, not only marketing. A marketing consent
        # covers member-service messages too (the broader agreement); otherwise the scope must match.
        commercial = tpl.message_type in pure.COMMERCIAL_TYPES
        scopes = sorted({tpl.message_type, MessageType.MARKETING})
        with tenant_context(tenant):
            opted_out = set(OptOut.objects.filter(number__in=in_array(recipients)).values_list("number", flat=True))
            consented: set[str] = set()
            if commercial and options.consent_policy == ConsentPolicy.STRICT:
                consented = set(
                    Consent.objects.filter(
                        number__in=in_array(recipients), scope__in=scopes, withdrawn_at__isnull=True
                    ).values_list("number", flat=True)
                )
        scanner = get_scanner()  # once per call: one primary-key read
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
                    rules = _country_rules(tenant)
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

        allowed = sum(1 for verdict in verdicts if verdict.allowed)
        if allowed and _count_volume(tenant=tenant, options=options, count=allowed):
            verdicts = [
                RecipientVerdict(
                    v.number, True, None, "Volume spike: held for review (R-CMP-8).", v.content, True, v.rule
                )
                if v.allowed
                else v
                for v in verdicts
            ]
    return CheckResult(
        signature_id=sig.pk,
        template_id=tpl.pk,
        template_version=version.number,
        message_type=tpl.message_type,
        verdicts=verdicts,
    )


def _country_lookup(home: str):
    """country_of(number) with a fast path for the home country when its calling code is its own
    (+86 is only CN): no phone-number parsing for the bulk of domestic traffic."""
    import phonenumbers

    code = phonenumbers.country_code_for_region(home)
    prefix = f"+{code}" if code and phonenumbers.region_codes_for_country_code(code) == (home,) else None

    def country_of(number: str) -> str | None:
        if prefix and number.startswith(prefix) and number[1:].isdigit():
            return home
        return pure.country_of(number)

    return country_of


def _buckets(now: datetime) -> dict[str, datetime]:
    minute = now.replace(second=0, microsecond=0)
    return {"minute": minute, "hour": minute.replace(minute=0), "day": minute.replace(hour=0, minute=0)}


def _count_volume(*, tenant: Tenant, options: ComplianceSettings, count: int) -> bool:
    """Add `count` to the tenant's counters; refuse over a cap (R-CMP-6), report a spike (R-CMP-8)."""
    buckets = _buckets(_now().astimezone(UTC))
    table = VolumeCounter._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO public.{table} (tenant_id, granularity, bucket_start, count)
                VALUES (%s, 'minute', %s, %s), (%s, 'hour', %s, %s), (%s, 'day', %s, %s)
                ON CONFLICT (tenant_id, granularity, bucket_start)
                DO UPDATE SET count = {table}.count + EXCLUDED.count
                RETURNING granularity, count""",
            [tenant.pk, buckets["minute"], count, tenant.pk, buckets["hour"], count, tenant.pk, buckets["day"], count],
        )
        totals = dict(cursor.fetchall())
        for granularity, cap in (("minute", options.per_minute_cap), ("day", options.per_day_cap)):
            if cap is not None and totals[granularity] > cap:
                raise VolumeCapped(
                    f"The account may send {cap} messages per {granularity} (R-CMP-6).",
                    details={"cap": cap, "per": granularity, "would_be": totals[granularity]},
                )
        multiple = options.spike_multiple or settings.COMPLIANCE_SPIKE_MULTIPLE
        if not multiple:
            return False
        window = settings.COMPLIANCE_SPIKE_BASELINE_HOURS
        cursor.execute(
            f"""SELECT COALESCE(SUM(count), 0) FROM public.{table}
                WHERE tenant_id = %s AND granularity = 'hour' AND bucket_start >= %s AND bucket_start < %s""",
            [tenant.pk, buckets["hour"] - timedelta(hours=window), buckets["hour"]],
        )
        usual = cursor.fetchone()[0] / window
        return totals["hour"] > multiple * max(usual, settings.COMPLIANCE_SPIKE_MIN_HOURLY)


# --- R-CMP-4 opt-out and the block list ------------------------------------------------------


def add_opt_out(
    *, tenant: Tenant, number: str, actor: Actor, source: str = OptOutSource.API, keyword: str = ""
) -> OptOut:
    """Add a number to the tenant's opt-out list (idempotent)."""
    number = _number(number)
    with transaction.atomic(), tenant_context(tenant):
        opt_out, created = OptOut.objects.get_or_create(
            number=number, defaults={"source": source, "keyword": keyword, "created_by": actor.label}
        )
        if created:
            record_operation(
                actor=actor,
                action="opt_out.add",
                tenant=tenant,
                obj=opt_out,
                after={"number": number, "source": source, "keyword": keyword},
            )
    return opt_out


def remove_opt_out(*, tenant: Tenant, number: str, actor: Actor, reason: str = "", by_recipient: bool = False) -> bool:
    """Lift an opt-out: only the recipient's own opt-in keyword or an operator may (R-CMP-4).

    A customer API key is refused (optout_removal_forbidden). Leaves a removal record.
    """
    if not by_recipient and actor.kind != "user":
        raise OptOutRemovalForbidden()
    if not by_recipient and not reason.strip():
        raise ReasonRequired()
    number = _number(number)
    with transaction.atomic(), tenant_context(tenant):
        opt_out = OptOut.objects.select_for_update().filter(number=number).first()
        if opt_out is None:
            return False
        OptOutRemoval.objects.create(
            number=number,
            opted_out_at=opt_out.created_at,
            removed_by="recipient opt-in keyword" if by_recipient else actor.label,
            reason=reason,
        )
        opt_out.delete()
        record_operation(
            actor=actor,
            action="opt_out.remove",
            tenant=tenant,
            reason=reason,
            after={"number": number, "by_recipient": by_recipient},
        )
    return True


def import_opt_outs(*, tenant: Tenant, numbers: list[str], actor: Actor) -> dict:
    """Bulk add (CSV import). Invalid numbers are reported, valid ones added."""
    added, invalid = 0, []
    with transaction.atomic(), tenant_context(tenant):
        for raw in numbers:
            try:
                number = pure.normalise_number(raw)
            except ValueError:
                invalid.append(raw)
                continue
            _, created = OptOut.objects.get_or_create(
                number=number, defaults={"source": OptOutSource.IMPORT, "created_by": actor.label}
            )
            added += created
        record_operation(
            actor=actor, action="opt_out.import", tenant=tenant, after={"added": added, "invalid": len(invalid)}
        )
    return {"added": added, "invalid": invalid}


_keywords_lock = threading.Lock()
_keywords: tuple | None = None
_keywords_stamp: tuple | None = None


def reply_keywords() -> tuple[reply_rules.Keyword, ...]:
    """The enabled opt-out / opt-in / courtesy keywords (operator-edited), compiled and cached per
    process; rebuilt when a row changes (one aggregate read). No rows at all → the defaults."""
    global _keywords, _keywords_stamp
    from django.db.models import Count, Max

    stamp = tuple(OptOutKeyword.objects.aggregate(n=Count("id"), at=Max("updated_at")).values())
    if _keywords is not None and stamp == _keywords_stamp:
        return _keywords
    with _keywords_lock:
        rows = list(OptOutKeyword.objects.filter(enabled=True).values_list("word", "action", "alone_only"))
        compiled = reply_rules.compile_keywords(rows) if stamp[0] else reply_rules.DEFAULTS
        _keywords, _keywords_stamp = compiled, stamp
    return compiled


KEYWORD_FIELDS = ("word", "action", "alone_only", "enabled", "note")


def save_opt_out_keyword(*, keyword: OptOutKeyword, actor: Actor) -> OptOutKeyword:
    """Create or change a reply keyword (admin) (R-CMP-4); matched under the one normaliser."""
    keyword.word = (keyword.word or "").strip()
    keyword.match_key = normalise(keyword.word)[:40]
    if not keyword.match_key:
        raise ComplianceError("The keyword has no letters or digits.", code="invalid_field")
    if keyword.action not in KeywordAction.values:
        raise ComplianceError(f"Unknown keyword action {keyword.action!r}.", code="invalid_field")
    clash = OptOutKeyword.objects.filter(match_key=keyword.match_key).exclude(pk=keyword.pk).first()
    if clash is not None:
        raise ComplianceError(f"{keyword.word!r} is the same keyword as {clash.word!r}.", code="keyword_exists")
    with transaction.atomic():
        created = keyword.pk is None
        keyword.save()
        record_operation(
            actor=actor,
            action="opt_out_keyword.create" if created else "opt_out_keyword.update",
            obj=keyword,
            after={field: getattr(keyword, field) for field in KEYWORD_FIELDS},
        )
    return keyword


def delete_opt_out_keywords(*, keyword_ids: list[int], actor: Actor) -> int:
    with transaction.atomic():
        words = list(OptOutKeyword.objects.filter(pk__in=keyword_ids).values_list("word", flat=True))
        deleted, _ = OptOutKeyword.objects.filter(pk__in=keyword_ids).delete()
        record_operation(actor=actor, action="opt_out_keyword.delete", after={"words": words})
    return deleted


def apply_inbound_keyword(*, tenant, number: str, text: str) -> str | None:
    """R-CMP-4: act on an inbound reply at once. Returns "opt_out", "opt_in", "review" (an
    ambiguous reply filed in the review list for an operator) or None (an ordinary reply).
    See compliance/replies.py for how a reply is read. Safe inside or outside the tenant's schema."""
    verdict = reply_rules.classify_reply(text or "", reply_keywords())
    if verdict.action is None:
        return None
    try:
        number = pure.normalise_number(number)
    except ValueError:
        logger.warning("Reply %r from an unusable number %r ignored", verdict.action, number)
        return None
    actor = Actor.system("inbound-keyword")
    if verdict.action == "opt_out":
        add_opt_out(
            tenant=tenant, number=number, actor=actor, source=OptOutSource.KEYWORD, keyword=(text or "").strip()[:40]
        )
    elif verdict.action == "opt_in":
        remove_opt_out(
            tenant=tenant,
            number=number,
            actor=actor,
            reason=f"recipient replied {(text or '').strip()[:40]}",
            by_recipient=True,
        )
    else:
        with transaction.atomic():
            review = OptOutReview.objects.create(
                tenant_id=tenant.pk, number=number, text=text or "", tokens=list(verdict.tokens), why=verdict.why
            )
            record_operation(
                actor=actor, action="opt_out_review.file", tenant=tenant, obj=review, after={"why": verdict.why}
            )
    return verdict.action


def decide_opt_out_review(*, review: OptOutReview, opt_out: bool, actor: Actor, reason: str = "") -> OptOutReview:
    """An operator settles an ambiguous reply: opt the number out, or dismiss (R-CMP-4)."""
    if not opt_out and not reason.strip():
        raise ReasonRequired("Say why this reply is not an opt-out.")
    with transaction.atomic():
        review = OptOutReview.objects.select_for_update().select_related("tenant").get(pk=review.pk)
        if review.status != ReplyReviewStatus.PENDING:
            raise ReviewConflict(f"This reply is already {review.status}.")
        if opt_out:
            add_opt_out(
                tenant=review.tenant,
                number=review.number,
                actor=actor,
                source=OptOutSource.KEYWORD,
                keyword=review.text.strip()[:40],
            )
        review.status = ReplyReviewStatus.OPTED_OUT if opt_out else ReplyReviewStatus.DISMISSED
        review.decided_by, review.decided_at, review.reason = actor.label, _now(), reason
        review.save(update_fields=["status", "decided_by", "decided_at", "reason"])
        record_operation(
            actor=actor,
            action="opt_out_review.decide",
            tenant=review.tenant,
            obj=review,
            reason=reason,
            after={"status": review.status},
        )
    return review


def block_number(*, number: str, actor: Actor, reason: str, source: str = "operator") -> GlobalBlock:
    """Add a number to the platform-wide block list (R-CMP-4)."""
    number = _number(number)
    with transaction.atomic():
        block, created = GlobalBlock.objects.get_or_create(
            number=number, defaults={"reason": reason, "source": source, "created_by": actor.label}
        )
        if created:
            record_operation(actor=actor, action="global_block.add", obj=block, reason=reason, after={"number": number})
    return block


def unblock_number(*, number: str, actor: Actor, reason: str) -> bool:
    if not reason.strip():
        raise ReasonRequired()
    number = _number(number)
    with transaction.atomic():
        deleted, _ = GlobalBlock.objects.filter(number=number).delete()
        if deleted:
            record_operation(actor=actor, action="global_block.remove", reason=reason, after={"number": number})
    return bool(deleted)


# --- R-CMP-5 consent -------------------------------------------------------------------------


def record_consent(
    *,
    tenant: Tenant,
    number: str,
    source: str,
    actor: Actor,
    scope: str = MessageType.MARKETING,
    granted_at: datetime | None = None,
) -> Consent:
    """Record a recipient's consent with its source and time (R-CMP-5). Idempotent per number+scope."""
    number = _number(number)
    if not source.strip():
        raise ComplianceError(
            "The consent source is required (where and how the recipient agreed).", code="source_required"
        )
    if scope not in MessageType.values:
        raise ComplianceError(f"Unknown scope {scope!r}.", code="invalid_field")
    with transaction.atomic(), tenant_context(tenant):
        consent = Consent.objects.filter(number=number, scope=scope, withdrawn_at__isnull=True).first()
        if consent is None:
            consent = Consent.objects.create(
                number=number, scope=scope, source=source, granted_at=granted_at or _now(), created_by=actor.label
            )
            record_operation(
                actor=actor,
                action="consent.record",
                tenant=tenant,
                obj=consent,
                after={"number": number, "scope": scope, "source": source},
            )
    return consent


def withdraw_consent(*, tenant: Tenant, number: str, actor: Actor, scope: str = MessageType.MARKETING) -> int:
    number = _number(number)
    with transaction.atomic(), tenant_context(tenant):
        changed = Consent.objects.filter(number=number, scope=scope, withdrawn_at__isnull=True).update(
            withdrawn_at=_now()
        )
        if changed:
            record_operation(
                actor=actor, action="consent.withdraw", tenant=tenant, after={"number": number, "scope": scope}
            )
    return changed


# --- R-CMP-6 enforcement ---------------------------------------------------------------------


def record_violation(
    *,
    tenant: Tenant,
    category: str,
    evidence: str,
    actor: Actor,
    template: Template | None = None,
    message_reference: str = "",
    message_count: int = 1,
) -> Violation:
    if not evidence.strip():
        raise ComplianceError("Evidence is required.", code="evidence_required")
    with transaction.atomic():
        violation = Violation.objects.create(
            tenant=tenant,
            category=category,
            template=template,
            message_reference=message_reference,
            message_count=message_count,
            evidence=evidence,
            recorded_by=actor.label,
        )
        record_operation(
            actor=actor,
            action="violation.record",
            tenant=tenant,
            obj=violation,
            after={"category": category, "message_count": message_count},
        )
    return violation


def _action(
    *, tenant: Tenant, kind: str, actor: Actor, reason: str, violation: Violation | None, details: dict | None = None
) -> EnforcementAction:
    if not reason.strip():
        raise ReasonRequired()
    action = EnforcementAction.objects.create(
        tenant=tenant, violation=violation, kind=kind, reason=reason, operator=actor.label, details=details or {}
    )
    record_operation(
        actor=actor, action=f"enforcement.{kind}", tenant=tenant, obj=action, reason=reason, after=details or {}
    )
    return action


def warn_tenant(*, tenant: Tenant, actor: Actor, reason: str, violation: Violation | None = None) -> EnforcementAction:
    with transaction.atomic():
        return _action(tenant=tenant, kind=ActionKind.WARNING, actor=actor, reason=reason, violation=violation)


def order_rectification(
    *, tenant: Tenant, deadline: datetime, actor: Actor, reason: str, violation: Violation | None = None
) -> EnforcementAction:
    with transaction.atomic():
        update_compliance_settings(
            tenant=tenant, changes={"rectification_deadline": deadline}, actor=actor, reason=reason
        )
        return _action(
            tenant=tenant,
            kind=ActionKind.RECTIFICATION,
            actor=actor,
            reason=reason,
            violation=violation,
            details={"deadline": deadline.isoformat()},
        )


def mark_rectification_done(*, tenant: Tenant, actor: Actor, reason: str = "") -> ComplianceSettings:
    """An operator confirms the tenant rectified in time (or late): no escalation after this (R-CMP-6)."""
    with transaction.atomic():
        row = ComplianceSettings.objects.select_for_update().filter(tenant_id=tenant.pk).first()
        if row is None or row.rectification_deadline is None:
            raise ReviewConflict("No rectification is ordered for this tenant.", code="no_rectification")
        if row.rectification_done_at is not None:
            raise ReviewConflict("This rectification is already marked done.", code="rectification_already_done")
        row.rectification_done_at, row.rectification_done_by = _now(), actor.label
        row.save(update_fields=["rectification_done_at", "rectification_done_by", "updated_at"])
        record_operation(
            actor=actor,
            action="rectification.done",
            tenant=tenant,
            obj=row,
            reason=reason,
            after={
                "deadline": row.rectification_deadline.isoformat(),
                "late": row.rectification_done_at > row.rectification_deadline,
            },
        )
    return row


OVERDUE_RECTIFICATION_ACTIONS = ("escalate", "suspend_sending")


def escalate_overdue_rectifications(*, now: datetime | None = None) -> int:
    """Periodic (R-CMP-6): a rectification deadline passed and not marked done is escalated once:
    recorded, the operators told (mail_admins after commit), and with
    COMPLIANCE_OVERDUE_RECTIFICATION_ACTION = "suspend_sending" the next ladder step taken through
    suspend_sending(). Runs twice → one escalation (rectification_escalated_at, row lock)."""
    from django.core.exceptions import ImproperlyConfigured

    mode = settings.COMPLIANCE_OVERDUE_RECTIFICATION_ACTION
    if mode not in OVERDUE_RECTIFICATION_ACTIONS:
        raise ImproperlyConfigured(
            f"COMPLIANCE_OVERDUE_RECTIFICATION_ACTION must be one of {OVERDUE_RECTIFICATION_ACTIONS}, not {mode!r}."
        )
    now = now or _now()
    actor = Actor.system("rectification-escalation")
    due = ComplianceSettings.objects.filter(
        rectification_deadline__lt=now, rectification_done_at__isnull=True, rectification_escalated_at__isnull=True
    ).values_list("pk", flat=True)
    escalated = 0
    for pk in list(due):
        with transaction.atomic():
            row = ComplianceSettings.objects.select_for_update().select_related("tenant").get(pk=pk)
            deadline = row.rectification_deadline
            if deadline is None or deadline >= now or row.rectification_done_at or row.rectification_escalated_at:
                continue  # changed since the scan
            row.rectification_escalated_at = now
            row.save(update_fields=["rectification_escalated_at", "updated_at"])
            tenant = row.tenant
            shown = timezone.localtime(deadline).strftime("%Y-%m-%d %H:%M")
            reason = f"Rectification deadline {shown} passed without being marked done (R-CMP-6)"
            ordered = (
                EnforcementAction.objects.filter(tenant=tenant, kind=ActionKind.RECTIFICATION)
                .order_by("-created_at", "-id")
                .first()
            )
            violation = ordered.violation if ordered else None
            suspended = mode == "suspend_sending" and tenant.state == TenantState.ACTIVE
            record_operation(
                actor=actor,
                action="rectification.escalate",
                tenant=tenant,
                obj=row,
                reason=reason,
                after={"deadline": deadline.isoformat(), "mode": mode, "suspended": suspended},
            )
            if suspended:
                suspend_sending(tenant=tenant, actor=actor, reason=reason, violation=violation)
            subject = f"Overdue rectification: {tenant.name}"
            body = f"{reason}.\nTenant: {tenant.name} ({tenant.schema_name})\n" + (
                "Sending was suspended (COMPLIANCE_OVERDUE_RECTIFICATION_ACTION=suspend_sending).\n"
                if suspended
                else "No automatic action: decide the next step on the violation's page.\n"
            )
            transaction.on_commit(lambda s=subject, b=body: _tell_operators(subject=s, body=b), robust=True)
            escalated += 1
    return escalated


def _tell_operators(*, subject: str, body: str) -> None:
    from django.core.mail import mail_admins

    mail_admins(subject, body, fail_silently=False)


def cap_volume(
    *,
    tenant: Tenant,
    actor: Actor,
    reason: str,
    per_minute: int | None = None,
    per_day: int | None = None,
    violation: Violation | None = None,
) -> EnforcementAction:
    """Cut the tenant's volume (004 §4.8): at most per_minute / per_day allowed messages (None lifts a cap)."""
    with transaction.atomic():
        update_compliance_settings(
            tenant=tenant, changes={"per_minute_cap": per_minute, "per_day_cap": per_day}, actor=actor, reason=reason
        )
        return _action(
            tenant=tenant,
            kind=ActionKind.VOLUME_CAP,
            actor=actor,
            reason=reason,
            violation=violation,
            details={"per_minute": per_minute, "per_day": per_day},
        )


def suspend_sending(
    *, tenant: Tenant, actor: Actor, reason: str, violation: Violation | None = None
) -> EnforcementAction:
    from tenants.services import suspend_tenant

    with transaction.atomic():
        suspend_tenant(tenant=tenant, actor=actor, reason=reason)
        return _action(tenant=tenant, kind=ActionKind.SUSPEND, actor=actor, reason=reason, violation=violation)


def forfeit_balance(
    *, tenant: Tenant, actor: Actor, reason: str, violation: Violation | None = None
) -> EnforcementAction:
    """Forfeit remaining packages and balance (004 §4.10, R-BIL-3) through billing."""
    from billing import services as billing

    with transaction.atomic():
        action = _action(tenant=tenant, kind=ActionKind.FORFEIT, actor=actor, reason=reason, violation=violation)
        billing.forfeit(tenant=tenant, actor=actor, reason=reason, idempotency_key=f"compliance:forfeit:{action.pk}")
    return action


def charge_penalty(
    *,
    tenant: Tenant,
    actor: Actor,
    reason: str,
    illegal_messages: int = 0,
    channels_cut: int = 0,
    violation: Violation | None = None,
) -> EnforcementAction:
    """Liquidated damages (004 §7.4): per illegal message and per carrier channel cut, booked by billing."""
    if illegal_messages < 0 or channels_cut < 0 or illegal_messages + channels_cut == 0:
        raise ComplianceError("Give a positive number of illegal messages and/or channels cut.", code="invalid_field")
    amount = (
        illegal_messages * settings.COMPLIANCE_PENALTY_PER_MESSAGE
        + channels_cut * settings.COMPLIANCE_PENALTY_PER_CHANNEL_CUT
    )
    from billing import services as billing

    with transaction.atomic():
        action = _action(
            tenant=tenant,
            kind=ActionKind.PENALTY,
            actor=actor,
            reason=reason,
            violation=violation,
            details={"illegal_messages": illegal_messages, "channels_cut": channels_cut, "amount": amount},
        )
        billing.penalty(
            tenant=tenant, amount=amount, actor=actor, reason=reason, idempotency_key=f"compliance:penalty:{action.pk}"
        )
    return action


def terminate(*, tenant: Tenant, actor: Actor, reason: str, violation: Violation | None = None) -> EnforcementAction:
    """Terminate the tenant for good (R-TEN-3, R-CMP-6)."""
    from tenants.services import terminate_tenant

    with transaction.atomic():
        terminate_tenant(tenant=tenant, actor=actor, reason=reason)
        return _action(tenant=tenant, kind=ActionKind.TERMINATE, actor=actor, reason=reason, violation=violation)


# --- R-CMP-7 complaints ----------------------------------------------------------------------


def file_complaint(
    *,
    tenant: Tenant,
    source: str,
    number: str,
    text: str,
    actor: Actor,
    message_reference: str = "",
    message_text: str = "",
) -> Complaint:
    """Record a complaint; the tenant must answer within COMPLIANCE_COMPLAINT_ANSWER_HOURS (72 h, 004 §4.2)."""
    with transaction.atomic():
        complaint = Complaint.objects.create(
            tenant=tenant,
            source=source,
            number=number,
            text=text,
            message_reference=message_reference,
            message_text=message_text,
            created_by=actor.label,
            answer_due_at=_now() + timedelta(hours=settings.COMPLIANCE_COMPLAINT_ANSWER_HOURS),
        )
        record_operation(
            actor=actor,
            action="complaint.file",
            tenant=tenant,
            obj=complaint,
            after={"source": source, "due": complaint.answer_due_at.isoformat()},
        )
    return complaint


def answer_complaint(*, complaint: Complaint, answer: str, actor: Actor) -> Complaint:
    """The tenant answers (allowed for a suspended tenant too). Late answers are kept, still late."""
    if not answer.strip():
        raise ComplianceError("The answer is empty.", code="answer_required")
    with transaction.atomic():
        complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
        if complaint.status not in (ComplaintStatus.OPEN, ComplaintStatus.ESCALATED):
            raise ReviewConflict(f"This complaint is {complaint.status}.")
        before = {"status": complaint.status}
        complaint.answer = answer
        complaint.answered_at = _now()
        complaint.status = ComplaintStatus.ANSWERED
        complaint.save(update_fields=["answer", "answered_at", "status"])
        record_operation(
            actor=actor,
            action="complaint.answer",
            tenant=complaint.tenant,
            obj=complaint,
            before=before,
            after={"status": complaint.status},
        )
    return complaint


def close_complaint(*, complaint: Complaint, actor: Actor, reason: str) -> Complaint:
    with transaction.atomic():
        complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
        before = {"status": complaint.status}
        complaint.status = ComplaintStatus.CLOSED
        complaint.save(update_fields=["status"])
        record_operation(
            actor=actor,
            action="complaint.close",
            tenant=complaint.tenant,
            obj=complaint,
            reason=reason,
            before=before,
            after={"status": complaint.status},
        )
    return complaint


def escalate_overdue_complaints(*, now: datetime | None = None) -> int:
    """Periodic (R-CMP-7): open complaints past their deadline are escalated to operators, and with
    COMPLIANCE_SUSPEND_ON_OVERDUE_COMPLAINT the tenant's sending is suspended."""
    from tenants.services import suspend_tenant

    now = now or _now()
    actor = Actor.system("complaint-escalation")
    escalated = 0
    overdue = Complaint.objects.filter(status=ComplaintStatus.OPEN, answer_due_at__lt=now).values_list("pk", flat=True)
    for pk in list(overdue):
        with transaction.atomic():
            complaint = Complaint.objects.select_for_update().select_related("tenant").get(pk=pk)
            if complaint.status != ComplaintStatus.OPEN:
                continue
            complaint.status = ComplaintStatus.ESCALATED
            complaint.escalated_at = now
            complaint.save(update_fields=["status", "escalated_at"])
            reason = f"Complaint #{complaint.pk} not answered within {settings.COMPLIANCE_COMPLAINT_ANSWER_HOURS} hours"
            record_operation(
                actor=actor,
                action="complaint.escalate",
                tenant=complaint.tenant,
                obj=complaint,
                reason=reason,
                after={"status": complaint.status},
            )
            if settings.COMPLIANCE_SUSPEND_ON_OVERDUE_COMPLAINT and complaint.tenant.state == TenantState.ACTIVE:
                suspend_tenant(tenant=complaint.tenant, actor=actor, reason=reason)
                _action(tenant=complaint.tenant, kind=ActionKind.SUSPEND, actor=actor, reason=reason, violation=None)
            escalated += 1
    return escalated


def prune_volume_counters(*, now: datetime | None = None) -> int:
    """Drop counter buckets nobody reads any more: minutes after 2 days, hours after 30 days (the spike
    baseline needs COMPLIANCE_SPIKE_BASELINE_HOURS), days after 400 days."""
    now = now or _now()
    keep = {
        "minute": timedelta(days=2),
        "hour": timedelta(days=30, hours=settings.COMPLIANCE_SPIKE_BASELINE_HOURS),
        "day": timedelta(days=400),
    }
    deleted = 0
    for granularity, age in keep.items():
        count, _ = VolumeCounter.objects.filter(granularity=granularity, bucket_start__lt=now - age).delete()
        deleted += count
    return deleted
