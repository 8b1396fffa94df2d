"""Read paths for the API and the admin. Public-schema records are always filtered by tenant."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from tenants.models import Tenant

from .models import (
    Complaint,
    ComplaintStatus,
    Consent,
    EnforcementAction,
    OptOut,
    ReviewStatus,
    Signature,
    Template,
    TemplateVersion,
    Violation,
)


def signatures_for(*, tenant: Tenant) -> QuerySet[Signature]:
    return Signature.objects.filter(tenant=tenant).prefetch_related("proofs").order_by("-created_at", "-id")


def templates_for(*, tenant: Tenant) -> QuerySet[Template]:
    return (
        Template.objects.filter(tenant=tenant)
        .select_related("approved_version")
        .prefetch_related("versions")
        .order_by("-created_at", "-id")
    )


def versions_of(*, template: Template) -> QuerySet[TemplateVersion]:
    return template.versions.order_by("-number")


def latest_version(template: Template) -> TemplateVersion | None:
    versions = sorted(template.versions.all(), key=lambda v: v.number)
    return versions[-1] if versions else None


def violations_for(*, tenant: Tenant) -> QuerySet[Violation]:
    return Violation.objects.filter(tenant=tenant).prefetch_related("actions").order_by("-created_at", "-id")


def enforcement_actions_for(*, tenant: Tenant) -> QuerySet[EnforcementAction]:
    return EnforcementAction.objects.filter(tenant=tenant)


def complaints_for(*, tenant: Tenant) -> QuerySet[Complaint]:
    return Complaint.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def overdue_complaints() -> QuerySet[Complaint]:
    return Complaint.objects.filter(status=ComplaintStatus.OPEN, answer_due_at__lt=timezone.now())


def opt_outs() -> QuerySet[OptOut]:
    """The current tenant schema's opt-outs (call inside the tenant's context)."""
    return OptOut.objects.order_by("-created_at", "-id")


def consents() -> QuerySet[Consent]:
    """The current tenant schema's consents (call inside the tenant's context)."""
    return Consent.objects.order_by("-granted_at", "-id")


def signature_review_queue() -> QuerySet[Signature]:
    return Signature.objects.filter(status=ReviewStatus.PENDING).select_related("tenant").order_by("created_at", "id")


def template_review_queue() -> QuerySet[TemplateVersion]:
    return (
        TemplateVersion.objects.filter(status=ReviewStatus.PENDING)
        .select_related("template__tenant")
        .order_by("created_at", "id")
    )


def tenant_review_history(*, tenant: Tenant, limit: int = 20) -> dict:
    """What a reviewer wants to see next to a filing: the tenant's other filings and violations."""
    return {
        "signatures": list(Signature.objects.filter(tenant=tenant).order_by("-created_at")[:limit]),
        "template_versions": list(
            TemplateVersion.objects.filter(template__tenant=tenant)
            .select_related("template")
            .order_by("-created_at")[:limit]
        ),
        "violations": list(Violation.objects.filter(tenant=tenant).order_by("-created_at")[:limit]),
        "actions": list(EnforcementAction.objects.filter(tenant=tenant)[:limit]),
    }


def country_rules_for(*, tenant: Tenant):
    """Every destination-country rule with the caller's registered senders (R-CMP-9)."""
    from django.contrib.postgres.expressions import ArraySubquery
    from django.db.models import OuterRef

    from .models import CountryRule, RegisteredSender

    senders = RegisteredSender.objects.filter(rule=OuterRef("pk"), tenant_id=tenant.pk).values("sender_id")
    return CountryRule.objects.annotate(my_senders=ArraySubquery(senders)).order_by("country")
