"""R-CMP-4, R-CMP-5: opt-outs, inbound reply keywords and their review list, the block list, consent."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from django.db import transaction
from django_tenants.utils import tenant_context

from smsplatform.numbers import normalise_lenient
from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .. import replies as reply_rules
from ..models import (
    Consent,
    GlobalBlock,
    KeywordAction,
    MessageType,
    OptOut,
    OptOutKeyword,
    OptOutRemoval,
    OptOutReview,
    OptOutSource,
    ReplyReviewStatus,
)
from ..normalise import normalise
from ._base import ComplianceError, OptOutRemovalForbidden, ReasonRequired, ReviewConflict, _now, _number

logger = logging.getLogger(__name__)


# --- R-CMP-4 opt-out and the block list ------------------------------------------------------


def add_opt_out(
    *, tenant: Tenant, number: str, actor: Actor, source: str = OptOutSource.API, keyword: str = ""
) -> OptOut:
    """Add a number to the tenant's opt-out list (idempotent)."""
    number = _number(number)
    with transaction.atomic(), tenant_context(tenant):
        opt_out, created = OptOut.objects.get_or_create(
            number=number, defaults={"source": source, "keyword": keyword, "created_by": actor.label}
        )
        if created:
            record_operation(
                actor=actor,
                action="opt_out.add",
                tenant=tenant,
                obj=opt_out,
                after={"number": number, "source": source, "keyword": keyword},
            )
    return opt_out


def remove_opt_out(*, tenant: Tenant, number: str, actor: Actor, reason: str = "", by_recipient: bool = False) -> bool:
    """Lift an opt-out: only the recipient's own opt-in keyword or an operator may (R-CMP-4).

    A customer API key is refused (optout_removal_forbidden). Leaves a removal record.
    """
    if not by_recipient and actor.kind != "user":
        raise OptOutRemovalForbidden()
    if not by_recipient and not reason.strip():
        raise ReasonRequired()
    number = _number(number)
    with transaction.atomic(), tenant_context(tenant):
        opt_out = OptOut.objects.select_for_update().filter(number=number).first()
        if opt_out is None:
            return False
        OptOutRemoval.objects.create(
            number=number,
            opted_out_at=opt_out.created_at,
            removed_by="recipient opt-in keyword" if by_recipient else actor.label,
            reason=reason,
        )
        opt_out.delete()
        record_operation(
            actor=actor,
            action="opt_out.remove",
            tenant=tenant,
            reason=reason,
            after={"number": number, "by_recipient": by_recipient},
        )
    return True


def import_opt_outs(*, tenant: Tenant, numbers: list[str], actor: Actor) -> dict:
    """Bulk add (CSV import). Invalid numbers are reported, valid ones added."""
    added, invalid = 0, []
    with transaction.atomic(), tenant_context(tenant):
        for raw in numbers:
            try:
                number = normalise_lenient(raw)
            except ValueError:
                invalid.append(raw)
                continue
            _, created = OptOut.objects.get_or_create(
                number=number, defaults={"source": OptOutSource.IMPORT, "created_by": actor.label}
            )
            added += created
        record_operation(
            actor=actor, action="opt_out.import", tenant=tenant, after={"added": added, "invalid": len(invalid)}
        )
    return {"added": added, "invalid": invalid}


_keywords_lock = threading.Lock()
_keywords: tuple | None = None
_keywords_stamp: tuple | None = None


def reply_keywords() -> tuple[reply_rules.Keyword, ...]:
    """The enabled opt-out / opt-in / courtesy keywords (operator-edited), compiled and cached per
    process; rebuilt when a row changes (one aggregate read). No rows at all → the defaults."""
    global _keywords, _keywords_stamp
    from django.db.models import Count, Max

    stamp = tuple(OptOutKeyword.objects.aggregate(n=Count("id"), at=Max("updated_at")).values())
    if _keywords is not None and stamp == _keywords_stamp:
        return _keywords
    with _keywords_lock:
        rows = list(OptOutKeyword.objects.filter(enabled=True).values_list("word", "action", "alone_only"))
        compiled = reply_rules.compile_keywords(rows) if stamp[0] else reply_rules.DEFAULTS
        _keywords, _keywords_stamp = compiled, stamp
    return compiled


KEYWORD_FIELDS = ("word", "action", "alone_only", "enabled", "note")


def save_opt_out_keyword(*, keyword: OptOutKeyword, actor: Actor) -> OptOutKeyword:
    """Create or change a reply keyword (admin) (R-CMP-4); matched under the one normaliser."""
    keyword.word = (keyword.word or "").strip()
    keyword.match_key = normalise(keyword.word)[:40]
    if not keyword.match_key:
        raise ComplianceError("The keyword has no letters or digits.", code="invalid_field")
    if keyword.action not in KeywordAction.values:
        raise ComplianceError(f"Unknown keyword action {keyword.action!r}.", code="invalid_field")
    clash = OptOutKeyword.objects.filter(match_key=keyword.match_key).exclude(pk=keyword.pk).first()
    if clash is not None:
        raise ComplianceError(f"{keyword.word!r} is the same keyword as {clash.word!r}.", code="keyword_exists")
    with transaction.atomic():
        created = keyword.pk is None
        keyword.save()
        record_operation(
            actor=actor,
            action="opt_out_keyword.create" if created else "opt_out_keyword.update",
            obj=keyword,
            after={field: getattr(keyword, field) for field in KEYWORD_FIELDS},
        )
    return keyword


def delete_opt_out_keywords(*, keyword_ids: list[int], actor: Actor) -> int:
    with transaction.atomic():
        words = list(OptOutKeyword.objects.filter(pk__in=keyword_ids).values_list("word", flat=True))
        deleted, _ = OptOutKeyword.objects.filter(pk__in=keyword_ids).delete()
        record_operation(actor=actor, action="opt_out_keyword.delete", after={"words": words})
    return deleted


def apply_inbound_keyword(*, tenant, number: str, text: str) -> str | None:
    """R-CMP-4: act on an inbound reply at once. Returns "opt_out", "opt_in", "review" (an
    ambiguous reply filed in the review list for an operator) or None (an ordinary reply).
    See compliance/replies.py for how a reply is read. Safe inside or outside the tenant's schema."""
    verdict = reply_rules.classify_reply(text or "", reply_keywords())
    if verdict.action is None:
        return None
    try:
        number = normalise_lenient(number)
    except ValueError:
        logger.warning("Reply %r from an unusable number %r ignored", verdict.action, number)
        return None
    actor = Actor.system("inbound-keyword")
    if verdict.action == "opt_out":
        add_opt_out(
            tenant=tenant, number=number, actor=actor, source=OptOutSource.KEYWORD, keyword=(text or "").strip()[:40]
        )
    elif verdict.action == "opt_in":
        remove_opt_out(
            tenant=tenant,
            number=number,
            actor=actor,
            reason=f"recipient replied {(text or '').strip()[:40]}",
            by_recipient=True,
        )
    else:
        with transaction.atomic():
            review = OptOutReview.objects.create(
                tenant_id=tenant.pk, number=number, text=text or "", tokens=list(verdict.tokens), why=verdict.why
            )
            record_operation(
                actor=actor, action="opt_out_review.file", tenant=tenant, obj=review, after={"why": verdict.why}
            )
    return verdict.action


def decide_opt_out_review(*, review: OptOutReview, opt_out: bool, actor: Actor, reason: str = "") -> OptOutReview:
    """An operator settles an ambiguous reply: opt the number out, or dismiss (R-CMP-4)."""
    if not opt_out and not reason.strip():
        raise ReasonRequired("Say why this reply is not an opt-out.")
    with transaction.atomic():
        review = OptOutReview.objects.select_for_update().select_related("tenant").get(pk=review.pk)
        if review.status != ReplyReviewStatus.PENDING:
            raise ReviewConflict(f"This reply is already {review.status}.")
        if opt_out:
            add_opt_out(
                tenant=review.tenant,
                number=review.number,
                actor=actor,
                source=OptOutSource.KEYWORD,
                keyword=review.text.strip()[:40],
            )
        review.status = ReplyReviewStatus.OPTED_OUT if opt_out else ReplyReviewStatus.DISMISSED
        review.decided_by, review.decided_at, review.reason = actor.label, _now(), reason
        review.save(update_fields=["status", "decided_by", "decided_at", "reason"])
        record_operation(
            actor=actor,
            action="opt_out_review.decide",
            tenant=review.tenant,
            obj=review,
            reason=reason,
            after={"status": review.status},
        )
    return review


def block_number(*, number: str, actor: Actor, reason: str, source: str = "operator") -> GlobalBlock:
    """Add a number to the platform-wide block list (R-CMP-4)."""
    number = _number(number)
    with transaction.atomic():
        block, created = GlobalBlock.objects.get_or_create(
            number=number, defaults={"reason": reason, "source": source, "created_by": actor.label}
        )
        if created:
            record_operation(actor=actor, action="global_block.add", obj=block, reason=reason, after={"number": number})
    return block


def unblock_number(*, number: str, actor: Actor, reason: str) -> bool:
    if not reason.strip():
        raise ReasonRequired()
    number = _number(number)
    with transaction.atomic():
        deleted, _ = GlobalBlock.objects.filter(number=number).delete()
        if deleted:
            record_operation(actor=actor, action="global_block.remove", reason=reason, after={"number": number})
    return bool(deleted)


# --- R-CMP-5 consent -------------------------------------------------------------------------


def record_consent(
    *,
    tenant: Tenant,
    number: str,
    source: str,
    actor: Actor,
    scope: str = MessageType.MARKETING,
    granted_at: datetime | None = None,
) -> Consent:
    """Record a recipient's consent with its source and time (R-CMP-5). Idempotent per number+scope."""
    number = _number(number)
    if not source.strip():
        raise ComplianceError(
            "The consent source is required (where and how the recipient agreed).", code="source_required"
        )
    if scope not in MessageType.values:
        raise ComplianceError(f"Unknown scope {scope!r}.", code="invalid_field")
    with transaction.atomic(), tenant_context(tenant):
        consent = Consent.objects.filter(number=number, scope=scope, withdrawn_at__isnull=True).first()
        if consent is None:
            consent = Consent.objects.create(
                number=number, scope=scope, source=source, granted_at=granted_at or _now(), created_by=actor.label
            )
            record_operation(
                actor=actor,
                action="consent.record",
                tenant=tenant,
                obj=consent,
                after={"number": number, "scope": scope, "source": source},
            )
    return consent


def withdraw_consent(*, tenant: Tenant, number: str, actor: Actor, scope: str = MessageType.MARKETING) -> int:
    number = _number(number)
    with transaction.atomic(), tenant_context(tenant):
        changed = Consent.objects.filter(number=number, scope=scope, withdrawn_at__isnull=True).update(
            withdrawn_at=_now()
        )
        if changed:
            record_operation(
                actor=actor, action="consent.withdraw", tenant=tenant, after={"number": number, "scope": scope}
            )
    return changed
