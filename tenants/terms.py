"""Agreement versions, their publication and tenants' answers (R-TEN-7, 002 §13.4, 000).

A version is published at least 7 days before it takes effect, with a notice to every tenant
(R-DLV-7); tenants accept or object through the API, objections within 7 days of publication; an
objection lands in the operators' queue (admin) until resolved; every answer is recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import status

from smsplatform.errors import Conflict, DomainError, NotFound

from .models import NoticeKind, Tenant, TermsAnswer, TermsResponse, TermsVersion
from .notices import check_notice_period, notify_all_tenants
from .services import Actor, record_operation

OBJECTION_DAYS = 7


class TermsError(DomainError):
    code = "terms_error"


class TermsNotFound(NotFound):
    code = "terms_not_found"
    default_message = "No such published agreement version."


class ObjectionPeriodOver(TermsError):
    code = "objection_period_over"
    http_status = status.HTTP_409_CONFLICT
    default_message = "The 7 days to object to this version are over."


class AlreadyAnswered(Conflict):
    code = "terms_already_answered"
    default_message = "This account already answered this version."


def create_terms_version(*, version: str, title: str, body_zh: str, body_en: str, actor: Actor) -> TermsVersion:
    if not version.strip() or not title.strip() or not body_zh.strip() or not body_en.strip():
        raise TermsError("A version needs a number, a title and its text in Chinese and English.", code="invalid_terms")
    if TermsVersion.objects.filter(version=version.strip()).exists():
        raise Conflict(f"Version {version} exists.", code="terms_version_exists")
    with transaction.atomic():
        terms = TermsVersion.objects.create(
            version=version.strip(), title=title, body_zh=body_zh, body_en=body_en, created_by_label=actor.label
        )
        record_operation(actor=actor, action="terms.create", obj=terms, after={"version": terms.version})
    return terms


def publish_terms(
    *, terms: TermsVersion, effective_at: datetime, actor: Actor, now: datetime | None = None
) -> TermsVersion:
    """Publish ≥ 7 days ahead and tell every tenant (R-TEN-7, R-DLV-7)."""
    now = now or timezone.now()
    check_notice_period(kind=NoticeKind.TERMS_CHANGE, effective_at=effective_at, now=now)
    with transaction.atomic():
        terms = TermsVersion.objects.select_for_update().get(pk=terms.pk)
        if terms.published_at is not None:
            raise Conflict("This version is already published.", code="terms_already_published")
        terms.published_at, terms.effective_at = now, effective_at
        terms.objection_deadline = now + timedelta(days=OBJECTION_DAYS)
        terms.save(update_fields=["published_at", "effective_at", "objection_deadline"])
        deadline = timezone.localtime(terms.objection_deadline).strftime("%Y-%m-%d %H:%M")
        told = notify_all_tenants(
            kind=NoticeKind.TERMS_CHANGE,
            dedupe_key=f"terms:{terms.pk}",
            subject_zh=f"服务协议变更：{terms.version}",
            subject_en=f"Service agreement change: {terms.version}",
            body_zh=f"{terms.body_zh}\n\n如有异议，请于 {deadline} 前通过 API 提出（POST /api/v1/terms/{terms.pk}/object）。",
            body_en=(
                f"{terms.body_en}\n\nTo object, answer through the API by {deadline} "
                f"(POST /api/v1/terms/{terms.pk}/object); to accept, POST /api/v1/terms/{terms.pk}/accept."
            ),
            data={
                "terms_id": terms.pk,
                "version": terms.version,
                "objection_deadline": terms.objection_deadline.isoformat(),
            },
            effective_at=effective_at,
            actor=actor,
            now=now,
        )
        record_operation(
            actor=actor,
            action="terms.publish",
            obj=terms,
            after={"version": terms.version, "effective_at": effective_at.isoformat(), "tenants_told": told},
        )
    return terms


def published_terms() -> QuerySet[TermsVersion]:
    return TermsVersion.objects.filter(published_at__isnull=False).order_by("-published_at", "-id")


def respond_to_terms(
    *, tenant: Tenant, terms_id: int, answer: str, actor: Actor, comment: str = "", now: datetime | None = None
) -> TermsResponse:
    """Record acceptance or an objection. An objection may later become an acceptance; an
    acceptance is final; objections only within the 7 days."""
    now = now or timezone.now()
    terms = published_terms().filter(pk=terms_id).first()
    if terms is None:
        raise TermsNotFound(details={"terms_id": terms_id})
    if answer == TermsAnswer.OBJECT:
        if now > terms.objection_deadline:
            raise ObjectionPeriodOver(details={"objection_deadline": terms.objection_deadline.isoformat()})
        if not comment.strip():
            raise TermsError("Say what you object to.", code="objection_reason_required")
    with transaction.atomic():
        existing = TermsResponse.objects.select_for_update().filter(tenant=tenant, terms=terms).first()
        if existing is not None and not (existing.answer == TermsAnswer.OBJECT and answer == TermsAnswer.ACCEPT):
            raise AlreadyAnswered(details={"answer": existing.answer})
        if existing is not None:
            before = {"answer": existing.answer}
            existing.answer, existing.comment, existing.answered_by_label = answer, comment, actor.label
            existing.answered_at = now
            existing.save(update_fields=["answer", "comment", "answered_by_label", "answered_at"])
            response = existing
        else:
            before = None
            response = TermsResponse.objects.create(
                tenant=tenant, terms=terms, answer=answer, comment=comment, answered_by_label=actor.label
            )
        record_operation(
            actor=actor,
            action=f"terms.{answer}",
            tenant=tenant,
            obj=response,
            reason=comment,
            before=before,
            after={"version": terms.version, "answer": answer},
        )
    return response


def resolve_objection(*, response: TermsResponse, actor: Actor, resolution: str) -> TermsResponse:
    """An operator closes an objection from the queue, saying how."""
    if not resolution.strip():
        raise TermsError("Say how the objection was resolved.", code="resolution_required")
    with transaction.atomic():
        response = TermsResponse.objects.select_for_update().get(pk=response.pk)
        if response.answer != TermsAnswer.OBJECT or response.resolved_at is not None:
            raise Conflict("Not an open objection.", code="not_an_open_objection")
        response.resolved_at, response.resolved_by_label, response.resolution = timezone.now(), actor.label, resolution
        response.save(update_fields=["resolved_at", "resolved_by_label", "resolution"])
        record_operation(
            actor=actor, action="terms.resolve_objection", tenant=response.tenant, obj=response, reason=resolution
        )
    return response
