"""Send statistics (R-BIL-7): counts by day / hour / type / status / channel / carrier / country,
delivery rate and receipt-latency percentiles, for one tenant or platform-wide.

Messages live in each tenant's schema, so platform-wide figures read a UNION ALL over the
tenant schemas in ONE query: percentiles (PostgreSQL percentile_cont) cannot be merged from
per-schema results, counts could.

Definitions:
- submitted: the carrier accepted the message (submitted_at set);
- delivery rate: delivered / submitted;
- receipt latency: done_at − submitted_at, in seconds, of messages with a receipt. Receipt done
  dates have minute precision (YYMMDDhhmm), so a done date can read up to 59 s before the submit
  time: such latencies count as 0, not as negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from smsplatform.errors import DomainError
from tenants.models import Tenant
from tenants.selectors import customer_tenants

GROUPS = {
    "day": "date_trunc('day', created_at AT TIME ZONE %(tz)s)",
    "hour": "date_trunc('hour', created_at AT TIME ZONE %(tz)s)",
    "type": "message_type",
    "status": "status",
    "channel": "channel_id",
    "carrier": "carrier",
    "country": "country",
    "tenant": "schema",
}
MAX_RANGE_DAYS = 366
FAILED_STATES = ("undelivered", "expired", "rejected", "failed")


class InvalidStatsQuery(DomainError):
    code = "invalid_stats_query"


@dataclass(frozen=True)
class StatsRow:
    key: str | int | None
    total: int
    segments: int
    amount: int
    submitted: int
    delivered: int
    failed: int
    delivery_rate: float | None
    latency_p50: float | None
    latency_p90: float | None
    latency_p99: float | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _union_sql(schemas: list[str]) -> str:
    qn = connection.ops.quote_name
    parts = [
        f"SELECT %(s{i})s::text AS schema, created_at, message_type, status, channel_id, carrier, country, segments, "
        f"amount, submitted_at, done_at FROM {qn(schema)}.delivery_message "
        f"WHERE created_at >= %(date_from)s AND created_at < %(date_to)s"
        for i, schema in enumerate(schemas)
    ]
    return " UNION ALL ".join(parts)


_AGGREGATES = """
    count(*) AS total,
    coalesce(sum(segments), 0) AS segments,
    coalesce(sum(amount), 0) AS amount,
    count(*) FILTER (WHERE submitted_at IS NOT NULL) AS submitted,
    count(*) FILTER (WHERE status = 'delivered') AS delivered,
    count(*) FILTER (WHERE status IN ('undelivered', 'expired', 'rejected', 'failed')) AS failed,
    percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY greatest(extract(epoch FROM done_at - submitted_at), 0))
        FILTER (WHERE done_at IS NOT NULL AND submitted_at IS NOT NULL) AS latency
"""


def _row(key, total, segments, amount, submitted, delivered, failed, latency) -> StatsRow:
    latency = latency or [None, None, None]
    return StatsRow(
        key=key.isoformat() if isinstance(key, datetime) else key,
        total=total,
        segments=int(segments),
        amount=int(amount),
        submitted=submitted,
        delivered=delivered,
        failed=failed,
        delivery_rate=round(delivered / submitted, 4) if submitted else None,
        latency_p50=_round(latency[0]),
        latency_p90=_round(latency[1]),
        latency_p99=_round(latency[2]),
    )


def _round(value) -> float | None:
    return None if value is None else round(float(value), 3)


def resolve_range(*, date_from: datetime | None, date_to: datetime | None) -> tuple[datetime, datetime]:
    date_to = date_to or timezone.now()
    date_from = date_from or date_to - timedelta(days=30)
    if date_from >= date_to:
        raise InvalidStatsQuery("`from` must be before `to`.")
    if date_to - date_from > timedelta(days=MAX_RANGE_DAYS):
        raise InvalidStatsQuery(f"The range may span at most {MAX_RANGE_DAYS} days.")
    return date_from, date_to


def send_stats(
    *,
    tenants: list[Tenant],
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    group_by: str | None = None,
) -> dict:
    """Totals and (optionally) groups over the given tenants' send logs.

    Returns {"from", "to", "group_by", "totals": StatsRow dict, "groups": [StatsRow dict, …]}.
    """
    if group_by is not None and group_by not in GROUPS:
        raise InvalidStatsQuery(f"group_by must be one of {', '.join(GROUPS)}.", details={"group_by": group_by})
    date_from, date_to = resolve_range(date_from=date_from, date_to=date_to)
    empty = _row(None, 0, 0, 0, 0, 0, 0, None)
    result = {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "group_by": group_by,
        "totals": empty.as_dict(),
        "groups": [],
    }
    schemas = [t.schema_name for t in tenants]
    if not schemas:
        return result
    params = {"date_from": date_from, "date_to": date_to, "tz": settings.TIME_ZONE}
    params.update({f"s{i}": schema for i, schema in enumerate(schemas)})
    union = _union_sql(schemas)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH m AS ({union}) SELECT NULL, {_AGGREGATES} FROM m", params)
        result["totals"] = _row(*cursor.fetchone()).as_dict()
        if group_by:
            key = GROUPS[group_by]
            cursor.execute(f"WITH m AS ({union}) SELECT {key} AS k, {_AGGREGATES} FROM m GROUP BY k ORDER BY k", params)
            result["groups"] = [_row(*row).as_dict() for row in cursor.fetchall()]
    return result


def tenant_stats(
    *, tenant: Tenant, date_from: datetime | None = None, date_to: datetime | None = None, group_by: str | None = None
) -> dict:
    """One tenant's statistics (the customer API)."""
    return send_stats(tenants=[tenant], date_from=date_from, date_to=date_to, group_by=group_by)


def platform_stats(
    *,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    group_by: str | None = None,
    tenant_ids: list[int] | None = None,
) -> dict:
    """Every customer tenant (walks the schemas), for operators."""
    return send_stats(
        tenants=customer_tenants(tenant_ids or ()), date_from=date_from, date_to=date_to, group_by=group_by
    )


# --- the operators' dashboard (/admin/dashboard/) -------------------------------------------


def _model(label: str):
    """A model of an app built in parallel (compliance, billing) — None while it is absent."""
    from django.apps import apps

    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def review_queue_length() -> dict[str, int | None]:
    """Signatures and template versions waiting for review (R-CMP-1, R-CMP-2)."""
    out: dict[str, int | None] = {}
    for label, key in (("compliance.Signature", "signatures"), ("compliance.TemplateVersion", "templates")):
        model = _model(label)
        out[key] = model.objects.filter(status="pending").count() if model is not None else None
    return out


def overdue_complaints() -> int | None:
    """Complaints not answered within 72 hours (R-CMP-7)."""
    model = _model("compliance.Complaint")
    if model is None:
        return None
    now = timezone.now()
    return model.objects.filter(status__in=["open", "escalated"], answer_due_at__lt=now).count()


def low_balances(limit: int = 20) -> list[dict] | None:
    """Accounts at or below their low-balance threshold (R-BIL-6)."""
    from django.db.models import F

    model = _model("billing.Account")
    if model is None:
        return None
    rows = (
        model.objects.filter(low_balance_threshold__isnull=False, balance__lte=F("low_balance_threshold"))
        .select_related("tenant")
        .order_by("balance")[:limit]
    )
    return [
        {
            "tenant": str(a.tenant),
            "tenant_id": a.tenant_id,
            "account_id": a.pk,
            "currency": a.currency,
            "balance": a.balance,
            "threshold": a.low_balance_threshold,
        }
        for a in rows
    ]


def dashboard_data(*, days: int = 14, now: datetime | None = None) -> dict:
    """Everything the dashboard shows, platform-wide."""
    now = now or timezone.now()
    date_from = now - timedelta(days=days)
    by_day = platform_stats(date_from=date_from, date_to=now, group_by="day")
    by_channel = platform_stats(date_from=date_from, date_to=now, group_by="channel")
    by_status = platform_stats(date_from=date_from, date_to=now, group_by="status")
    return {
        "days": days,
        "totals": by_day["totals"],
        "by_day": by_day["groups"],
        "by_channel": by_channel["groups"],
        "by_status": by_status["groups"],
        "review_queue": review_queue_length(),
        "overdue_complaints": overdue_complaints(),
        "low_balances": low_balances(),
    }


# --- names, not ids: what people read on the dashboard ------------------------------------------


def readable_key(group_by: str | None, key, *, channels: dict, tenants: dict):
    """A group key as an operator reads it: channel and tenant names, dates without a clock,
    hours without seconds, status labels."""
    from delivery.models import MessageStatus
    from smsplatform.message_types import MessageType

    if group_by == "channel":
        return "not routed" if key is None else channels.get(key, f"channel {key} (deleted)")
    if group_by == "tenant":
        return tenants.get(key, key)
    if group_by in ("day", "hour") and isinstance(key, str):
        return key[:10] if group_by == "day" else key[:16].replace("T", " ")
    if group_by == "status" and key:
        return MessageStatus(key).label if key in MessageStatus.values else key
    if group_by == "type":
        return MessageType(key).label if key in MessageType.values else (key or "–")
    return "–" if key in (None, "") else key


def _names() -> dict:
    from delivery.models import Channel

    return {
        "channels": dict(Channel.objects.values_list("pk", "name")),
        "tenants": dict(Tenant.objects.values_list("schema_name", "name")),
    }


def readable_groups(groups: list[dict], group_by: str | None) -> list[dict]:
    names = _names()
    return [{**g, "key": readable_key(group_by, g["key"], **names)} for g in groups]


def readable_dashboard(data: dict) -> dict:
    """dashboard_data() with names instead of ids and schema names (in place)."""
    names = _names()
    for series, group_by in (("by_day", "day"), ("by_channel", "channel"), ("by_status", "status")):
        data[series] = [{**g, "key": readable_key(group_by, g["key"], **names)} for g in data[series]]
    return data
