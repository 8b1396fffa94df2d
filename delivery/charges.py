"""What delivery outcomes do to billing holds (R-BIL-2, R-BIL-8): messages that will never be
submitted give their held money back.
"""

from __future__ import annotations

import hashlib

from django.db import connection

from .models import Message


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
