"""Cross-tenant message lookup for the operators' Message admin (R-AUD-1, R-DLV-4).

Messages live in each tenant's schema, so a list across tenants is ONE query: a UNION ALL of one
`ORDER BY created_at DESC LIMIT n+1` subquery per tenant schema, merged and cut to n. Each
subquery is answered from an index (created_at, recipient, client_ref, status, the primary key),
so the cost grows with the page size and the number of tenants, never with the number of
messages; no page counts the table (a COUNT over 10M rows takes seconds). Pages are keyset
("older than this row"), not offsets.

Search `q` matches, in one pass: the message id, the client reference, a carrier message id
(through the public CarrierMessageId index) and the recipient. The recipient must be a whole
number (13812341234, 8613812341234, +8613812341234): a whole number is an index lookup, and an
ends-with search would let someone who sees masked numbers guess the hidden digits (R-AUD-2, the
same rule as the send-log export).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Tenant

from .models import CarrierMessageId, Channel, Message, MessageStatus, PendingReceipt

PAGE_SIZE = 50
# Columns the list shows; the detail page loads the whole row through the ORM.
LIST_COLUMNS = (
    "id",
    "created_at",
    "status",
    "recipient",
    "signature",
    "template",
    "message_type",
    "segments",
    "channel_id",
    "client_ref",
    "request_id",
    "reason",
    "error_code",
)
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")


@dataclass(frozen=True)
class MessageQuery:
    """What the operator asked for. Dates are whole days in the operator's zone, inclusive."""

    q: str = ""
    tenant_ids: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    channel_id: int | None = None
    message_type: str = ""
    date_from: date | None = None
    date_to: date | None = None
    request_id: int | None = None
    # keyset cursor: the last row of the previous page
    before: tuple[datetime, str, int] | None = None


@dataclass
class MessageRow:
    tenant: Tenant
    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def cursor(self) -> str:
        return f"{self.values['created_at'].isoformat()}|{self.tenant.schema_name}|{self.values['id']}"


def recipient_variants(text: str) -> list[str]:
    """The stored E.164 forms a typed whole number can have; [] when `text` is no whole number."""
    digits = re.sub(r"[\s\-()]", "", text)
    if re.fullmatch(r"\+\d{8,15}", digits):
        return [digits]
    if _CN_MOBILE.fullmatch(digits):
        return [f"+86{digits}"]
    if re.fullmatch(r"86" + _CN_MOBILE.pattern, digits) or re.fullmatch(r"00\d{8,15}", digits):
        return [f"+{digits.removeprefix('00')}"]
    return []


def parse_cursor(text: str) -> tuple[datetime, str, int] | None:
    try:
        at, schema, pk = text.split("|")
        parsed = datetime.fromisoformat(at)
        return (parsed, schema, int(pk)) if timezone.is_aware(parsed) else None
    except ValueError:
        return None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def search_messages(*, query: MessageQuery, limit: int = PAGE_SIZE) -> tuple[list[MessageRow], bool]:
    """One page of messages, newest first, and whether an older page exists."""
    tenants = list(
        Tenant.objects.exclude(schema_name="public").exclude(kind="platform").order_by("pk")
        if not query.tenant_ids
        else Tenant.objects.filter(pk__in=query.tenant_ids).exclude(schema_name="public")
    )
    if not tenants:
        return [], False
    q = query.q.strip()
    carrier_hits: dict[str, list[int]] = {}
    if q:
        for schema, message_id in CarrierMessageId.objects.filter(carrier_message_id=q).values_list(
            "schema_name", "message_id"
        )[:100]:
            carrier_hits.setdefault(schema, []).append(message_id)

    params: dict[str, Any] = {"limit": limit + 1}
    common: list[str] = []
    if q:
        params["q"] = q
        params["numbers"] = recipient_variants(q)
        matches = ["client_ref = %(q)s", "recipient = ANY(%(numbers)s)"]
        if q.isdigit() and len(q) <= 18:
            params["q_id"] = int(q)
            matches.append("id = %(q_id)s")
        search_sql = " OR ".join(matches)
    if query.statuses:
        params["statuses"] = list(query.statuses)
        common.append("status = ANY(%(statuses)s)")
    if query.channel_id is not None:
        params["channel_id"] = query.channel_id
        common.append("channel_id = %(channel_id)s")
    if query.message_type:
        params["message_type"] = query.message_type
        common.append("message_type = %(message_type)s")
    if query.date_from:
        params["date_from"] = _day_start(query.date_from)
        common.append("created_at >= %(date_from)s")
    if query.date_to:
        params["date_to"] = _day_start(query.date_to + timedelta(days=1))
        common.append("created_at < %(date_to)s")
    if query.request_id is not None:
        params["request_id"] = query.request_id
        common.append("request_id = %(request_id)s")
    if query.before:
        params["c_at"], params["c_schema"], params["c_id"] = query.before
        # created_at <= cursor keeps the created_at index usable; the row comparison breaks ties.
        common.append(
            "created_at <= %(c_at)s AND (created_at, %(schema{i})s::text, id) < (%(c_at)s, %(c_schema)s, %(c_id)s)"
        )

    qn = connection.ops.quote_name
    columns = ", ".join(LIST_COLUMNS)
    parts = []
    for i, tenant in enumerate(tenants):
        params[f"schema{i}"] = tenant.schema_name
        where = [c.replace("{i}", str(i)) for c in common]
        if q:
            own = search_sql
            if tenant.schema_name in carrier_hits:
                params[f"hits{i}"] = carrier_hits[tenant.schema_name]
                own += f" OR id = ANY(%(hits{i})s)"
            where.append(f"({own})")
        parts.append(
            f"(SELECT %(schema{i})s::text AS schema, {columns} FROM {qn(tenant.schema_name)}.delivery_message"
            f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY created_at DESC, id DESC LIMIT %(limit)s)"
        )
    sql = (
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) m "  # noqa: S608 - schema names quoted, values bound
        "ORDER BY created_at DESC, schema DESC, id DESC LIMIT %(limit)s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description]
        fetched = cursor.fetchall()
    by_schema = {t.schema_name: t for t in tenants}
    rows = [MessageRow(tenant=by_schema[r[0]], values=dict(zip(names[1:], r[1:], strict=True))) for r in fetched]
    return rows[:limit], len(rows) > limit


@dataclass
class MessageDetail:
    tenant: Tenant
    message: Message
    events: list
    parts: list
    carrier_ids: list
    receipts: list
    channel: Channel | None
    hold: Any = None
    capture: Any = None
    batch_size: int = 1


def message_detail(*, tenant: Tenant, message_id: int) -> MessageDetail | None:
    """Everything the send log keeps about one message (R-AUD-1), with its money (R-BIL-2/8)."""
    with tenant_context(tenant):
        message = Message.objects.filter(pk=message_id).select_related("request").first()
        if message is None:
            return None
        events = list(message.events.order_by("at", "id"))
        parts = list(message.parts.order_by("part"))
        batch_size = message.request.total
    carrier_ids = list(
        CarrierMessageId.objects.filter(schema_name=tenant.schema_name, message_id=message.pk)
        .select_related("channel")
        .order_by("part")
    )
    ids = {p.carrier_message_id for p in parts} | {c.carrier_message_id for c in carrier_ids}
    receipts = list(PendingReceipt.objects.filter(carrier_message_id__in=ids).order_by("received_at")) if ids else []
    channel = Channel.objects.filter(pk=message.channel_id).first() if message.channel_id else None
    detail = MessageDetail(
        tenant=tenant,
        message=message,
        events=events,
        parts=parts,
        carrier_ids=carrier_ids,
        receipts=receipts,
        channel=channel,
        batch_size=batch_size,
    )
    if message.hold_id:
        from billing.models import EntryKind, Hold, LedgerEntry

        detail.hold = Hold.objects.filter(pk=message.hold_id).select_related("account", "entry").first()
        if detail.hold and detail.hold.settled_at:
            kind = EntryKind.CAPTURE if detail.hold.state == "captured" else EntryKind.RELEASE
            # A settlement books one entry per account and batch, at the hold's settled_at.
            detail.capture = LedgerEntry.objects.filter(
                account_id=detail.hold.account_id, kind=kind, created_at=detail.hold.settled_at
            ).first()
    return detail


STATUS_CHOICES = MessageStatus.choices


def held_messages(
    *, tenant_ids: tuple[int, ...] = (), q: str = "", why: str = "", limit_per_tenant: int = 200
) -> list[tuple[Tenant, list[Message]]]:
    """Held messages (R-CMP-3/8) per tenant, oldest first, for the reviewers' page: search by
    template code, signature, client ref or a whole recipient number; `why` filters the hold
    reason. Held sets are small (the status index finds them), so a text filter on them is cheap."""
    from django.db.models import Q

    from tenants.selectors import customer_tenants

    q = q.strip()
    found = []
    for tenant in customer_tenants(tenant_ids):
        with tenant_context(tenant):
            qs = Message.objects.filter(status=MessageStatus.HELD)
            if q:
                qs = qs.filter(
                    Q(template=q)
                    | Q(signature=q.strip("【】[]"))
                    | Q(client_ref=q)
                    | Q(recipient__in=recipient_variants(q))
                )
            if why:
                qs = qs.filter(detail__icontains=why)
            rows = list(qs.order_by("created_at", "pk")[:limit_per_tenant])
        if rows:
            found.append((tenant, rows))
    return found
