"""Held volume and its re-confirmation (R-CMP-8, 004 §7.2).

When a spike holds a tenant's messages the tenant is told at once (a VOLUME_HELD notice: delivery's
intake calls tenants.duty_notices.notify_volume_held) and can confirm (release them for sending)
or cancel them through the API; the answer is recorded (Reconfirmation, shown to operators) and
in the operation trail. Only messages held for a spike
are the tenant's to release: a content hold (R-CMP-3) stays with the reviewers.
"""

from __future__ import annotations

from django.db import transaction
from django_tenants.utils import tenant_context

from compliance.services.gate import SPIKE_MARK
from smsplatform.errors import Conflict

from .models import NoticeKind, Reconfirmation, ReconfirmationAnswer, Tenant
from .services import Actor, record_operation

MAX_ANSWER = 1000


class NothingHeld(Conflict):
    code = "nothing_held"
    default_message = "No messages of this account are held for re-confirmation."


def spike_held_messages(*, tenant: Tenant, message_ids: list[int] | None = None):
    """The tenant's messages held for a spike, oldest first (enter the tenant's schema first)."""
    from delivery.models import Message, MessageStatus

    rows = Message.objects.filter(status=MessageStatus.HELD, detail__contains=SPIKE_MARK)
    if message_ids is not None:
        rows = rows.filter(pk__in=message_ids)
    return rows.order_by("created_at", "pk")


def answer_held_volume(
    *, tenant: Tenant, answer: str, actor: Actor, message_ids: list[int] | None = None, comment: str = ""
) -> Reconfirmation:
    """Confirm (release) or cancel the spike-held messages, all of them or the listed ones."""
    from delivery.held import cancel_message, release_held_messages

    if answer not in ReconfirmationAnswer.values:
        raise Conflict(f"Unknown answer {answer!r}.", code="invalid_answer")
    with transaction.atomic(), tenant_context(tenant):
        ids = list(spike_held_messages(tenant=tenant, message_ids=message_ids).values_list("pk", flat=True))
        ids = ids[:MAX_ANSWER]
        if not ids:
            raise NothingHeld(details={"message_ids": message_ids})
        if answer == ReconfirmationAnswer.CONFIRM:
            count = release_held_messages(tenant=tenant, message_ids=ids, actor=actor)
        else:
            for pk in ids:
                cancel_message(tenant=tenant, message_id=pk, actor=actor)
            count = len(ids)
        from .models import Notice

        notice = Notice.objects.filter(tenant=tenant, kind=NoticeKind.VOLUME_HELD).order_by("-created_at").first()
        item = Reconfirmation.objects.create(
            tenant=tenant,
            notice=notice,
            answer=answer,
            message_ids=ids,
            message_count=count,
            comment=comment,
            answered_by_label=actor.label,
        )
        record_operation(
            actor=actor,
            action=f"volume.{answer}",
            tenant=tenant,
            obj=item,
            reason=comment,
            after={"messages": count},
        )
    return item
