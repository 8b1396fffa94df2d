"""R-CMP-1, R-CMP-2: signatures, templates, protected brands, link domains, review and revocation."""

from __future__ import annotations

import logging
import secrets
import string

from django.conf import settings
from django.db import IntegrityError, transaction

from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .. import checks as pure
from .. import links
from .. import replies as reply_rules
from ..models import (
    LinkDomain,
    MessageType,
    ProtectedBrand,
    ReviewStatus,
    Signature,
    SignatureProof,
    Template,
    TemplateVersion,
)
from ..normalise import normalise
from ._base import (
    ComplianceError,
    InvalidParameter,
    InvalidSignature,
    InvalidTemplate,
    ReasonRequired,
    ReviewConflict,
    TemplateNotApproved,
    _now,
)
from .content import scan_text
from .optouts import reply_keywords

logger = logging.getLogger(__name__)


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
