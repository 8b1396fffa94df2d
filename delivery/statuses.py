"""The status machine of a message (R-DLV-1): every move goes through `transition()`; the one
exception, a failure overturned by evidence (issue 20 "delivered wins"), through
`deliver_failed_message()`.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from django.utils import timezone

from .errors import InvalidStatusTransition
from .models import FINAL_STATES, TRANSITIONS, Message, MessageStatus, StatusEvent

S = MessageStatus


class Move(NamedTuple):
    """A status event not saved yet (`save=False`): the bulk paths write many in one INSERT
    (bulk.insert_status_events). A tuple, not a StatusEvent: building a model instance per move
    was 7 % of a send worker's CPU (issue 16)."""

    message_id: int
    from_status: str
    to_status: str
    at: datetime
    detail: str


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def transition(
    *, message: Message, to_status: str, detail: str = "", at: datetime | None = None, save: bool = True, **fields
) -> StatusEvent | Move | None:
    """The one function that moves a message's status. A final state never goes backwards:
    an impossible move raises InvalidStatusTransition; moving to the same final state again
    (a duplicate receipt) is a no-op returning None. Call inside the tenant schema, in a
    transaction, with the message row locked when concurrent writers are possible."""
    at = at or timezone.now()
    if message.status == to_status and to_status in FINAL_STATES:
        return None
    if not can_transition(message.status, to_status):
        raise InvalidStatusTransition(
            f"A {message.status} message cannot become {to_status}.", details={"from": message.status, "to": to_status}
        )
    return _move(message=message, to_status=to_status, detail=detail, at=at, save=save, **fields)


# Issue 20 "delivered wins": a failure for want of an answer (the carrier may have taken the
# message all the same) is the one final state that evidence may overturn, and only to delivered.
LATE_EVIDENCE_REASONS = frozenset({"unconfirmed_submission", "validity_expired", "submit_failed"})


def may_deliver_after_failure(message: Message) -> bool:
    return message.status == S.FAILED and message.reason in LATE_EVIDENCE_REASONS


def deliver_failed_message(
    *, message: Message, detail: str = "", at: datetime | None = None, save: bool = True, **fields
) -> StatusEvent | Move:
    """failed → delivered, outside the table of moves: only for a failure that lacked evidence
    (LATE_EVIDENCE_REASONS), when the carrier's receipts prove every part delivered. The caller
    captures the released hold again (billing.services.capture_released_holds)."""
    if not may_deliver_after_failure(message):
        raise InvalidStatusTransition(
            f"A {message.status} message ({message.reason or 'no reason'}) cannot become delivered.",
            details={"from": message.status, "to": S.DELIVERED},
        )
    return _move(
        message=message, to_status=S.DELIVERED, detail=detail, at=at or timezone.now(), save=save, reason="", **fields
    )


def _move(*, message: Message, to_status: str, detail: str, at: datetime, save: bool, **fields) -> StatusEvent | Move:
    move = Move(message.pk, message.status, to_status, at, detail[:200])
    message.status = to_status
    message.status_at = at
    for name, value in fields.items():
        setattr(message, name, value)
    if not save:
        return move
    message.save(update_fields=["status", "status_at", *fields])
    # message_id, not message=: the FK descriptor's checks cost more than the rest of a move
    return StatusEvent.objects.create(**move._asdict())
