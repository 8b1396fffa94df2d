"""Domain errors of delivery, mapped once to API responses (smsplatform.errors)."""

from __future__ import annotations

from rest_framework import status as http

from smsplatform.errors import Conflict, DomainError, NotFound


class DeliveryError(DomainError):
    code = "delivery_error"


class ClientRefConflict(DeliveryError):
    code = "client_ref_conflict"
    http_status = http.HTTP_409_CONFLICT
    default_message = "This client_ref was already used with a different request body."


class BatchTooLarge(DeliveryError):
    code = "batch_too_large"
    default_message = "A batch holds at most 1000 recipients."


class InvalidSendTime(DeliveryError):
    code = "invalid_send_at"
    default_message = "send_at must be in the future (and within the scheduling horizon)."


class RecipientRejected(DeliveryError):
    """A single send whose only recipient was refused (the reason is the code)."""

    http_status = http.HTTP_422_UNPROCESSABLE_ENTITY


class MessageNotFound(NotFound):
    code = "message_not_found"
    default_message = "No such message."


class NotCancellable(Conflict):
    code = "not_cancellable"
    default_message = "Only scheduled, held or not yet submitted messages can be cancelled."


class InvalidStatusTransition(DeliveryError):
    code = "invalid_status_transition"
    http_status = http.HTTP_409_CONFLICT


class MaintenanceNoticeTooShort(DeliveryError):
    code = "maintenance_notice_too_short"
    default_message = "Maintenance must be announced at least one working day ahead (R-DLV-6)."


class InvalidMaintenanceWindow(DeliveryError):
    code = "invalid_maintenance_window"
    default_message = "Maintenance must end after it starts."
