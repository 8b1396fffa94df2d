"""Held volume and its re-confirmation (R-CMP-8, 004 §7.2).

When a spike holds a tenant's messages the tenant is told at once (a VOLUME_HELD notice) and can
confirm (release them for sending) or cancel them through the API; the answer is recorded
(Reconfirmation, shown to operators) and in the operation trail. Only messages held for a spike
are the tenant's to release: a content hold (R-CMP-3) stays with the reviewers.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from smsplatform.errors import Conflict

from .models import NoticeKind, Reconfirmation, ReconfirmationAnswer, Tenant
from .notices import notify
from .services import Actor, record_operation

# compliance.check_message marks a spike hold with the rule id in its detail text.
SPIKE_MARK = "R-CMP-8"
MAX_ANSWER = 1000


class NothingHeld(Conflict):
    code = "nothing_held"
    default_message = "No messages of this account are held for re-confirmation."


def notify_volume_held(*, tenant: Tenant, message_ids: list[int]) -> None:
    """Tell the tenant its volume is held and how to answer; once per hour of spike."""
    if not message_ids:
        return
    hour = timezone.now().strftime("%Y%m%d%H")
    notify(
        tenant=tenant,
        kind=NoticeKind.VOLUME_HELD,
        subject_zh="发送量异常，短信已暂停待确认",
        subject_en="Unusual volume: messages held for your re-confirmation",
        body_zh=(
            "您的账户发送量突增，部分短信已暂停发送。请通过 API 确认放行"
            "（POST /api/v1/held-volume/confirm）或取消（POST /api/v1/held-volume/cancel）。"
        ),
        body_en=(
            "Your account's volume rose sharply and some messages are held. Confirm them for sending "
            "(POST /api/v1/held-volume/confirm) or cancel them (POST /api/v1/held-volume/cancel)."
        ),
        data={"first_message_ids": sorted(message_ids)[:100], "held": len(message_ids)},
        dedupe_key=f"volume_held:{hour}",
        actor=Actor.system("compliance.volume"),
    )


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
