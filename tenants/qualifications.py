"""Qualifications and account names (R-TEN-6, 001 §4.4, 002 §4.1.2-3, §4.3.1, 004 §5.1).

A tenant files its business licence and industry permits (PDF or image, like signature proofs)
with expiry dates; operators approve or reject them; approved ones nearing expiry, or expired,
produce QUALIFICATION notices (R-DLV-7). Account names pass the same screening as signatures:
banned content (R-CMP-3) and impersonation of another tenant's approved brand or name (R-CMP-1).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import status

from compliance.normalise import licence_key
from compliance.services import approved_elsewhere, scan_text, signature_match_key
from smsplatform.errors import Conflict, DomainError

from .models import (
    NoticeKind,
    Qualification,
    QualificationKind,
    QualificationStatus,
    Tenant,
)
from .notices import notify
from .registration_updates import open_update_duty
from .services import Actor, record_operation

FILE_EXTENSIONS = (".pdf", ".jpg", ".jpeg", ".png")


class QualificationError(DomainError):
    code = "invalid_qualification"


class AccountNameRefused(DomainError):
    code = "account_name_refused"
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY


def _max_bytes() -> int:
    return getattr(settings, "COMPLIANCE_PROOF_MAX_BYTES", 10 * 1024 * 1024)


def file_qualification(
    *,
    tenant: Tenant,
    kind: str,
    title: str,
    file,
    actor: Actor,
    number: str = "",
    expires_on: date | None = None,
) -> Qualification:
    """File a document for review (R-TEN-6)."""
    if kind not in QualificationKind.values:
        raise QualificationError(f"Unknown kind {kind!r}.", details={"kinds": QualificationKind.values})
    if not title.strip():
        raise QualificationError("Give the document a title.")
    name = (getattr(file, "name", "") or "").lower()
    if not name.endswith(FILE_EXTENSIONS):
        raise QualificationError(f"Documents must be {', '.join(FILE_EXTENSIONS)} files.", details={"file": name})
    if file.size > _max_bytes():
        raise QualificationError(f"A document may be at most {_max_bytes()} bytes.", details={"file": name})
    if expires_on is not None and expires_on <= timezone.localdate():
        raise QualificationError("This document has already expired.", details={"expires_on": str(expires_on)})
    with transaction.atomic():
        item = Qualification.objects.create(
            tenant=tenant,
            kind=kind,
            title=title[:200],
            number=number[:100],
            file=file,
            expires_on=expires_on,
            filed_by_label=actor.label,
        )
        record_operation(
            actor=actor,
            action="qualification.file",
            tenant=tenant,
            obj=item,
            after={"kind": kind, "number": number, "expires_on": str(expires_on or "")},
        )
        _registration_changed(tenant=tenant, kind=kind, number=number, actor=actor)
    return item


def _registration_changed(*, tenant: Tenant, kind: str, number: str, actor: Actor) -> None:
    """R-TEN-6: a business licence with another number than the registered one means the
    registration changed: the 10-working-day update duty opens (tenants/registration_updates.py)."""
    if kind != QualificationKind.BUSINESS_LICENCE or not number.strip():
        return
    if licence_key(number) == tenant.licence_number:
        return
    open_update_duty(
        tenant=tenant,
        changed_on=timezone.localdate(),
        actor=actor,
        source="qualification",
        note=f"business licence filed with number {number}",
    )


def review_qualification(*, qualification: Qualification, to_status: str, reason: str, actor: Actor) -> Qualification:
    if to_status not in (QualificationStatus.APPROVED, QualificationStatus.REJECTED):
        raise QualificationError("A review approves or rejects.", code="invalid_review")
    if to_status == QualificationStatus.REJECTED and not reason.strip():
        raise QualificationError("Say why the document is rejected.", code="reason_required")
    with transaction.atomic():
        item = Qualification.objects.select_for_update().get(pk=qualification.pk)
        if item.status != QualificationStatus.PENDING:
            raise Conflict("Only pending documents are reviewed.", code="not_pending")
        item.status, item.review_reason = to_status, reason
        item.reviewed_by_label, item.reviewed_at = actor.label, timezone.now()
        item.save(update_fields=["status", "review_reason", "reviewed_by_label", "reviewed_at"])
        record_operation(
            actor=actor,
            action=f"qualification.{to_status}",
            tenant=item.tenant,
            obj=item,
            reason=reason,
            after={"status": to_status},
        )
    return item


def remind_qualifications(*, now: datetime | None = None) -> int:
    """The daily job: approved documents expiring within QUALIFICATIONS_REMIND_DAYS (30), or
    expired, are notified once each (per expiry date and state)."""
    today = timezone.localdate(now or timezone.now())
    horizon = today + timedelta(days=getattr(settings, "QUALIFICATIONS_REMIND_DAYS", 30))
    due = Qualification.objects.filter(
        status=QualificationStatus.APPROVED, expires_on__isnull=False, expires_on__lte=horizon
    ).select_related("tenant")
    sent = 0
    for item in due.iterator():
        expired = item.expires_on <= today
        state = "expired" if expired else "expiring"
        when = item.expires_on.isoformat()
        notify(
            tenant=item.tenant,
            kind=NoticeKind.QUALIFICATION,
            subject_zh=f"资质{'已过期' if expired else '即将过期'}：{item.title}",
            subject_en=f"Qualification {state}: {item.title}",
            body_zh=f"您的资质文件「{item.title}」（{item.number}）{'已于' if expired else '将于'} {when} 到期，请尽快上传更新后的文件。",
            body_en=f"Your document '{item.title}' ({item.number}) {'expired' if expired else 'expires'} on {when}. "
            "Please file the renewed document.",
            data={"qualification_id": item.pk, "expires_on": when, "state": state},
            dedupe_key=f"qualification:{item.pk}:{state}:{when}",
        )
        sent += 1
    return sent


def check_account_name(*, name: str, tenant: Tenant | None = None) -> None:
    """Refuse an account name with banned content, or one that is another tenant's approved brand
    (impersonation), as signatures are checked (R-TEN-6, 002 §4.1.3)."""
    scan = scan_text(name)
    if not scan.clean:
        match = scan.reject or scan.hold
        raise AccountNameRefused(f"The account name matches a banned-content rule: {match.detail}")
    key = signature_match_key(name)
    others = approved_elsewhere(tenant=tenant, match_key=key)  # tenant None: everyone's
    if others:
        raise AccountNameRefused(
            "The account name is another customer's approved brand (impersonation).",
            details={"held_by": sorted(set(others))},
        )
