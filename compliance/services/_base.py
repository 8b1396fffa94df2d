"""Errors and small helpers shared by the compliance services."""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone
from rest_framework import status

from smsplatform import numbers
from smsplatform.errors import DomainError

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
        return numbers.normalise_lenient(number)
    except ValueError as exc:
        raise InvalidNumber(f"Not a valid phone number: {number!r}.", details={"number": number}) from exc
