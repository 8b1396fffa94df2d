"""Send-log retention and recipient erasure (R-AUD-1, R-AUD-4).

R-AUD-1: the send log is kept at least six calendar months (001 §4.7): a message of 2 Sep is kept
through 2 Mar (local time), whatever the month lengths; 180 days would purge it on 1 Mar. The
purge refuses a setting shorter than RETENTION_FLOOR_DAYS outright and, whatever it is given,
only deletes rows older than its cutoff, which is never younger than the calendar floor.

R-AUD-4: an erasure request anonymises a recipient's message rows at one tenant (number replaced
by a keyed hash, content and parameters removed) once they are older than the floor; younger rows
wait, and the request says until when (`not_before`).
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Value
from django.db.models.functions import Replace
from django.utils import timezone
from django_tenants.utils import schema_context

from delivery.models import ErasureRequest, ErasureState
from smsplatform import numbers
from smsplatform.errors import DomainError
from tenants.models import Tenant
from tenants.selectors import customer_tenants
from tenants.services import Actor, record_operation

RETENTION_FLOOR_DAYS = 180  # R-AUD-1: "at least six months" (001 §4.7); not configurable
PURGE_BATCH = 5000


class RetentionError(DomainError):
    code = "retention_error"


class RetentionTooShort(RetentionError):
    code = "retention_too_short"
    default_message = f"Send-log retention cannot be shorter than {RETENTION_FLOOR_DAYS} days (R-AUD-1)."


class InvalidNumber(RetentionError):
    code = "invalid_number"
    default_message = "Give the recipient number in E.164 form, e.g. +8613812341234."


def retention_days(configured: int | None = None) -> int:
    """The retention in force; refuses anything below the floor (R-AUD-1)."""
    days = settings.AUDIT_RETENTION_DAYS if configured is None else configured
    if int(days) < RETENTION_FLOOR_DAYS:
        raise RetentionTooShort(
            f"AUDIT_RETENTION_DAYS={days} is below the {RETENTION_FLOOR_DAYS}-day floor (R-AUD-1); nothing was purged.",
            details={"configured": days, "minimum": RETENTION_FLOOR_DAYS},
        )
    return int(days)


def retention_cutoff(*, days: int | None = None, now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return min(now - timedelta(days=retention_days(days)), floor_cutoff(now))


RETENTION_FLOOR_MONTHS = 6


def floor_cutoff(now: datetime | None = None) -> datetime:
    """R-AUD-1: the start of the local day six calendar months back (31 Aug → 28/29 Feb: the
    shorter month keeps more). Rows created before this may go; none created on or after it."""
    local = timezone.localtime(now or timezone.now())
    month_index = local.year * 12 + (local.month - 1) - RETENTION_FLOOR_MONTHS
    year, month = divmod(month_index, 12)
    month += 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day, hour=0, minute=0, second=0, microsecond=0)


def earliest_purge(created_at: datetime) -> datetime:
    """When a row created at `created_at` may first go: the local day after six calendar months
    (created 2 Sep → 3 Mar 00:00; created 31 Aug → 1 Mar)."""
    local = timezone.localtime(created_at)
    month_index = local.year * 12 + (local.month - 1) + RETENTION_FLOOR_MONTHS
    year, month = divmod(month_index, 12)
    month += 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    start = local.replace(year=year, month=month, day=day, hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=1)


# --- purge ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    tenant_id: int
    cutoff: datetime
    messages: int
    requests: int
    inbound: int
    held: int = 0  # rows past the cutoff kept by a legal hold (R-AUD-5)


def purge_tenant(
    *, tenant: Tenant, days: int | None = None, actor: Actor | None = None, now: datetime | None = None
) -> PurgeResult:
    """Delete this tenant's send-log rows older than the retention (R-AUD-1), in batches;
    rows under a legal hold stay and are counted (R-AUD-5)."""
    from delivery.models import InboundMessage, Message, MessagePart, SendRequest, StatusEvent
    from tenants.legal_hold import held_inbound_filter, held_message_filter

    cutoff = retention_cutoff(days=days, now=now)
    # Belt and braces: whatever the arithmetic above, never past the floor.
    cutoff = min(cutoff, floor_cutoff(now))
    messages = requests = inbound = 0
    held_q, held_inbound_q = held_message_filter(tenant=tenant), held_inbound_filter(tenant=tenant)
    with schema_context(tenant.schema_name):
        due = Message.objects.filter(created_at__lt=cutoff)
        held = due.filter(held_q).count() if held_q is not None else 0
        due = due.exclude(held_q) if held_q is not None else due
        while True:
            ids = list(due.order_by("id").values_list("id", flat=True)[:PURGE_BATCH])
            if not ids:
                break
            with transaction.atomic():
                StatusEvent.objects.filter(message_id__in=ids)._raw_delete(connection.alias)
                MessagePart.objects.filter(message_id__in=ids)._raw_delete(connection.alias)
                messages += Message.objects.filter(id__in=ids)._raw_delete(connection.alias)
        with transaction.atomic():
            requests = SendRequest.objects.filter(created_at__lt=cutoff, messages__isnull=True)._raw_delete(
                connection.alias
            )
            old_inbound = InboundMessage.objects.filter(received_at__lt=cutoff)
            if held_inbound_q is not None:
                old_inbound = old_inbound.exclude(held_inbound_q)
            inbound = old_inbound._raw_delete(connection.alias)
    result = PurgeResult(
        tenant_id=tenant.pk, cutoff=cutoff, messages=messages, requests=requests, inbound=inbound, held=held
    )
    if messages or requests or inbound or held:
        record_operation(
            actor=actor or Actor.system("retention"),
            action="sendlog.purge",
            tenant=tenant,
            after={
                "cutoff": cutoff.isoformat(),
                "messages": messages,
                "requests": requests,
                "inbound": inbound,
                "held_by_legal_hold": held,
            },
        )
    return result


def purge_send_log(
    *, days: int | None = None, actor: Actor | None = None, now: datetime | None = None
) -> list[PurgeResult]:
    """The purge job: every tenant schema. Refuses (RetentionTooShort) before touching anything."""
    retention_days(days)
    return [purge_tenant(tenant=tenant, days=days, actor=actor, now=now) for tenant in customer_tenants()]


# --- erasure (R-AUD-4) ----------------------------------------------------------------------


def normalise_number(number: str) -> str:
    """E.164 of the number an erasure or legal hold names (smsplatform.numbers, lenient)."""
    try:
        return numbers.normalise_lenient(number)
    except numbers.InvalidNumber as exc:
        raise InvalidNumber(details={"number": number}) from exc


def number_hash(number: str) -> str:
    """Keyed hash (HMAC-SHA256, settings.AUDIT_ERASURE_HASH_KEY) of an E.164 number."""
    return hmac.new(settings.AUDIT_ERASURE_HASH_KEY.encode(), number.encode(), hashlib.sha256).hexdigest()


def anonymised_recipient(number: str) -> str:
    """What replaces the number in message rows: "~" + 19 base64url chars of the keyed hash
    (114 bits; the recipient column holds 20 characters). Rows of one erased number stay linkable."""
    digest = hmac.new(settings.AUDIT_ERASURE_HASH_KEY.encode(), number.encode(), hashlib.sha256).digest()
    return "~" + base64.urlsafe_b64encode(digest).decode()[:19]


def _number_variants(number: str) -> list[str]:
    """Message rows hold E.164 (+86…); accept a bare national form too."""
    variants = {number}
    if number.startswith("+86"):
        variants.add(number[3:])
    return sorted(variants)


def request_erasure(*, tenant: Tenant, number: str, actor: Actor, reason: str = "") -> ErasureRequest:
    """File an erasure request and process it at once (it may complete or wait)."""
    number = normalise_number(number)
    with transaction.atomic():
        erasure = ErasureRequest.objects.create(
            tenant=tenant,
            number=number,
            number_hash=number_hash(number),
            requested_by_label=actor.label,
            reason=reason,
        )
        record_operation(
            actor=actor,
            action="erasure.request",
            tenant=tenant,
            obj=erasure,
            reason=reason,
            after={"number_hash": erasure.number_hash},
        )
    return process_erasure(erasure_id=erasure.pk, actor=actor)


def process_erasure(*, erasure_id: int, actor: Actor | None = None, now: datetime | None = None) -> ErasureRequest:
    """Anonymise the rows the retention floor allows; complete, or wait until `not_before`."""
    from delivery.models import CallbackDelivery, InboundMessage, Message
    from tenants.legal_hold import held_inbound_filter, held_message_filter

    actor = actor or Actor.system("erasure")
    now = now or timezone.now()
    floor = floor_cutoff(now)
    with transaction.atomic():
        erasure = ErasureRequest.objects.select_for_update().select_related("tenant").get(pk=erasure_id)
        if erasure.state == ErasureState.DONE:
            return erasure
        variants = _number_variants(erasure.number)
        replacement = anonymised_recipient(erasure.number)
        # R-AUD-5: rows under a legal hold are neither anonymised nor let the request finish.
        held_q, held_inbound_q = (
            held_message_filter(tenant=erasure.tenant_id),
            held_inbound_filter(tenant=erasure.tenant_id),
        )
        with schema_context(erasure.tenant.schema_name):
            # Only rows that existed when the request was made (later sends are a new matter).
            mine = Message.objects.filter(recipient__in=variants, created_at__lte=erasure.created_at)
            held = mine.filter(held_q).count() if held_q is not None else 0
            if held_q is not None:
                mine = mine.exclude(held_q)
            done = mine.filter(created_at__lt=floor).update(
                recipient=replacement,
                content="",
                params={},
                detail="",
                client_ref=None,
            )
            theirs = InboundMessage.objects.filter(source__in=variants, received_at__lte=erasure.created_at)
            if held_inbound_q is not None:
                held += theirs.filter(held_inbound_q).count()
                theirs = theirs.exclude(held_inbound_q)
            theirs.filter(received_at__lt=floor).update(source=replacement, text="")
            youngest = mine.aggregate(latest=Max("created_at"))["latest"]
            inbound_youngest = theirs.aggregate(latest=Max("received_at"))["latest"]
        # Callback bodies (public schema) quote the number; past the floor they lose it too
        # (not while a legal hold keeps this number's records: R-AUD-5).
        for variant in variants if not held else []:
            CallbackDelivery.objects.filter(
                tenant_id=erasure.tenant_id,
                created_at__lt=floor,
                created_at__lte=erasure.created_at,
                body__contains=variant,
            ).update(body=Replace("body", Value(variant), Value(replacement)))
        erasure.rows_anonymised += done
        erasure.rows_held = held
        erasure.last_processed_at = now
        latest = max((t for t in (youngest, inbound_youngest) if t is not None), default=None)
        if held:
            # Looked at again daily until the hold is released.
            erasure.not_before = max(
                now + timedelta(days=1), latest + timedelta(days=RETENTION_FLOOR_DAYS) if latest else now
            )
            record_operation(
                actor=actor,
                action="erasure.held",
                tenant=erasure.tenant,
                obj=erasure,
                after={"rows_held": held, "rows_anonymised": done, "not_before": erasure.not_before.isoformat()},
            )
        elif latest is None:
            erasure.state = ErasureState.DONE
            erasure.not_before = None
            erasure.completed_at = now
            erasure.number = ""
            record_operation(
                actor=actor,
                action="erasure.complete",
                tenant=erasure.tenant,
                obj=erasure,
                after={"number_hash": erasure.number_hash, "rows_anonymised": erasure.rows_anonymised},
            )
        else:
            erasure.not_before = earliest_purge(latest)
            if done:
                record_operation(
                    actor=actor,
                    action="erasure.partial",
                    tenant=erasure.tenant,
                    obj=erasure,
                    after={"rows_anonymised": done, "not_before": erasure.not_before.isoformat()},
                )
        erasure.save()
    connection.set_schema_to_public()
    return erasure


def process_due_erasures(*, now: datetime | None = None) -> int:
    """The periodic job: waiting requests whose time has come."""
    now = now or timezone.now()
    due = ErasureRequest.objects.filter(state=ErasureState.WAITING, not_before__lte=now).values_list("pk", flat=True)
    count = 0
    for pk in list(due):
        process_erasure(erasure_id=pk, now=now)
        count += 1
    return count
