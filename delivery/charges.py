"""What delivery outcomes do to billing holds (R-BIL-2, R-BIL-8): messages that will never be
submitted give their held money back; messages that end with some parts accepted are charged
for those parts only; a message delivered after it was failed is charged again (issue 20).
"""

from __future__ import annotations

import hashlib
import logging

from django.db import connection
from django.utils import timezone

from .models import Message, MessagePart

log = logging.getLogger(__name__)


def release_messages_holds(*, messages: list[Message], key_prefix: str, reason: str) -> int:
    """Give back the held money of messages that will never be submitted (R-BIL-2)."""
    hold_ids = sorted(m.hold_id for m in messages if m.hold_id)
    if not hold_ids:
        return 0
    from billing.services import release_holds

    digest = hashlib.sha1(",".join(map(str, hold_ids)).encode(), usedforsecurity=False).hexdigest()
    return release_holds(
        hold_ids=hold_ids, idempotency_key=f"{key_prefix}:{connection.schema_name}:{digest}", reason=reason
    )


def hold_key(prefix: str, ids: list[int]) -> str:
    """An idempotency key for one settlement of these holds (the same holds → the same key)."""
    return prefix + hashlib.sha1(",".join(map(str, sorted(ids))).encode(), usedforsecurity=False).hexdigest()


def settle_holds(*, messages: list[Message], accepted: dict[int, int], key_prefix: str, reason: str) -> None:
    """Holds of messages that end without every part sent: released, except that the parts the
    carrier accepted are captured (R-BIL-2: charged per part actually submitted)."""
    from billing.services import Capture, capture_holds

    partial = [m for m in messages if m.hold_id and accepted.get(m.pk)]
    untouched = [m for m in messages if not accepted.get(m.pk)]
    if partial:
        capture_holds(
            captures=[
                Capture(hold_id=m.hold_id, carrier_message_id="", submitted_at=timezone.now(), segments=accepted[m.pk])
                for m in partial
            ],
            idempotency_key=hold_key(f"partial:{connection.schema_name}:", [m.hold_id for m in partial]),
        )
    if untouched:
        release_messages_holds(messages=untouched, key_prefix=key_prefix, reason=reason)


def capture_after_failure(late: list[tuple[Message, list[MessagePart]]]) -> None:
    """R-BIL-2/8 for messages delivered after failing: their released holds are captured for
    the parts the carrier accepted (every part: each has a delivered receipt). Idempotent."""
    from billing.services import Capture, capture_released_holds

    captures = [
        Capture(
            hold_id=m.hold_id,
            carrier_message_id=parts[0].carrier_message_id,
            submitted_at=min(p.submitted_at for p in parts if p.submitted_at),
            segments=len(parts),
        )
        for m, parts in late
        if m.hold_id
    ]
    if captures:
        key = hold_key(f"late:{connection.schema_name}:", [c.hold_id for c in captures])
        result = capture_released_holds(captures=captures, idempotency_key=key)
        if result.uncollectable:
            log.warning("delivered after failure, balance too low to bill: holds %s", result.uncollectable)
