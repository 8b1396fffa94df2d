"""Service levels and incidents (R-DLV-8, 000 故障恢复能力, 003).

Operators set targets per channel, per tenant, both, or platform-wide (ServiceLevelTarget): a
minimum delivery rate and/or a maximum receipt latency at a percentile. The periodic job
`evaluate_service_levels` (every minute, delivery/schedule.py) measures each target over its
window of the send log (messages live in the tenant schemas: one UNION ALL query per target):

- judged messages: routed to a channel (channel_id set), not cancelled/held/scheduled, created in
  [now - settle - window, now - settle): every one of them has had `settle_seconds` to get its
  receipt, so a message still without one counts against the target instead of being ignored;
- delivery rate: delivered / judged, in per cent;
- receipt latency: done_at - submitted_at of submitted messages; one still without a receipt
  counts with now - submitted_at (a lower bound that already exceeds any latency target up to
  `settle_seconds`), so a channel that stops returning receipts breaches instead of looking fast.

Fewer judged messages than `min_messages`: no verdict (nothing changes). A breach opens an
incident (one open incident per target; a lasting breach extends it with new tenants and
channels), e-mails ADMINS, records `service_level.breach` in the operation trail and sends an
`incident` notice to each affected tenant (tenants.notices). When the target is met again the
incident is marked recovered and ADMINS are told; an operator closes it (impact, cause), which
sends the `recovery` notice. The platform's own faults are compensated through billing
(`billing.services.adjust`, one ledger credit per incident and tenant).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.mail import mail_admins
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status

from smsplatform.errors import Conflict, DomainError
from tenants.models import NoticeKind, Tenant, TenantState
from tenants.services import Actor, record_operation

from .models import (
    Channel,
    Incident,
    IncidentCause,
    IncidentCompensation,
    IncidentState,
    ServiceLevelTarget,
)

log = logging.getLogger(__name__)

SYSTEM = Actor.system("service_levels")
# Not judged: never meant to be delivered yet (held, scheduled) or withdrawn (cancelled).
NOT_JUDGED = ("cancelled", "held", "scheduled")


class ServiceLevelError(DomainError):
    code = "invalid_service_level_target"
    http_status = status.HTTP_400_BAD_REQUEST


class IncidentError(DomainError):
    code = "invalid_incident"
    http_status = status.HTTP_400_BAD_REQUEST


class IncidentClosed(Conflict):
    code = "incident_closed"
    default_message = "This incident is closed."


class CompensationRefused(DomainError):
    code = "compensation_refused"
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY


# --- targets ---------------------------------------------------------------------------------

TARGET_FIELDS = (
    "name",
    "channel",
    "tenant",
    "min_delivery_rate",
    "max_latency_seconds",
    "latency_percentile",
    "window_minutes",
    "settle_seconds",
    "min_messages",
    "enabled",
)


def _clean_target(values: dict[str, Any]) -> dict[str, Any]:
    """Check a target's values; raises ServiceLevelError with the field in `details`."""

    def refuse(field_name: str, message: str):
        raise ServiceLevelError(message, details={"field": field_name})

    if not str(values.get("name") or "").strip():
        refuse("name", "Give the target a name.")
    rate = values.get("min_delivery_rate")
    if rate is not None:
        try:
            rate = Decimal(str(rate))
        except InvalidOperation:
            refuse("min_delivery_rate", "The delivery rate is a percentage, e.g. 95 or 99.5.")
        if not rate.is_finite() or not Decimal(0) < rate <= Decimal(100):
            refuse("min_delivery_rate", "The delivery rate is a percentage above 0 and at most 100.")
        values["min_delivery_rate"] = rate.quantize(Decimal("0.01"))
    latency = values.get("max_latency_seconds")
    if latency is not None and (not isinstance(latency, int) or latency <= 0):
        refuse("max_latency_seconds", "The latency target is a whole number of seconds above 0.")
    if rate is None and latency is None:
        refuse("min_delivery_rate", "Set a delivery-rate target, a latency target, or both.")
    for name, low, high in (
        ("latency_percentile", 50, 99),
        ("window_minutes", 1, 7 * 24 * 60),
        ("settle_seconds", 0, 3 * 24 * 3600),
        ("min_messages", 1, 10**9),
    ):
        value = values.get(name)
        if not isinstance(value, int) or not low <= value <= high:
            refuse(name, f"{name.replace('_', ' ')} must be a whole number from {low} to {high}.")
    if latency is not None and values["settle_seconds"] < latency:
        # Otherwise a message could still get its receipt within target after it was judged slow.
        refuse("settle_seconds", "Settle time must be at least the latency target.")
    return values


def _target_snapshot(target: ServiceLevelTarget) -> dict:
    data = {name: getattr(target, name) for name in TARGET_FIELDS}
    data["channel"], data["tenant"] = target.channel_id, target.tenant_id
    data["min_delivery_rate"] = str(target.min_delivery_rate) if target.min_delivery_rate is not None else None
    return data


def create_target(
    *,
    name: str,
    actor: Actor,
    channel: Channel | None = None,
    tenant: Tenant | None = None,
    min_delivery_rate: Decimal | float | str | None = None,
    max_latency_seconds: int | None = None,
    latency_percentile: int = 90,
    window_minutes: int = 60,
    settle_seconds: int = 600,
    min_messages: int = 20,
    enabled: bool = True,
) -> ServiceLevelTarget:
    """A new target (R-DLV-8), recorded in the trail."""
    values = _clean_target(
        {
            "name": name,
            "channel": channel,
            "tenant": tenant,
            "min_delivery_rate": min_delivery_rate,
            "max_latency_seconds": max_latency_seconds,
            "latency_percentile": latency_percentile,
            "window_minutes": window_minutes,
            "settle_seconds": settle_seconds,
            "min_messages": min_messages,
            "enabled": enabled,
        }
    )
    with transaction.atomic():
        target = ServiceLevelTarget.objects.create(created_by_label=actor.label, **values)
        record_operation(
            actor=actor, action="service_level.target.create", tenant=tenant, obj=target, after=_target_snapshot(target)
        )
    return target


def update_target(*, target: ServiceLevelTarget, changes: dict[str, Any], actor: Actor) -> ServiceLevelTarget:
    unknown = set(changes) - set(TARGET_FIELDS)
    if unknown:
        raise ServiceLevelError(f"Not target fields: {', '.join(sorted(unknown))}", details={"fields": sorted(unknown)})
    with transaction.atomic():
        target = ServiceLevelTarget.objects.select_for_update().get(pk=target.pk)
        before = _target_snapshot(target)
        values = _clean_target({**{name: getattr(target, name) for name in TARGET_FIELDS}, **changes})
        for name, value in values.items():
            setattr(target, name, value)
        target.save()
        record_operation(
            actor=actor,
            action="service_level.target.change",
            tenant=target.tenant,
            obj=target,
            before=before,
            after=_target_snapshot(target),
        )
    return target


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Group:
    tenant_id: int
    channel_id: int
    judged: int
    delivered: int
    slow: int


@dataclass
class Evaluation:
    target_id: int
    evaluated_at: str
    window_from: str
    window_to: str
    judged: int = 0
    delivered: int = 0
    delivery_rate: float | None = None
    latency_count: int = 0
    latency: float | None = None
    verdict: str = "no_data"  # ok | breached | no_data
    breaches: list[str] = field(default_factory=list)
    affected_tenant_ids: list[int] = field(default_factory=list)
    affected_channel_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _tenants_for(target: ServiceLevelTarget) -> list[Tenant]:
    if target.tenant_id:
        return [target.tenant]
    from tenants.selectors import customer_tenants

    # Terminated tenants send nothing (and their schema may be gone: R-TEN-8).
    return [t for t in customer_tenants() if t.state != TenantState.TERMINATED]


def measure(*, target: ServiceLevelTarget, now: datetime | None = None) -> Evaluation:
    """Measure one target over its window (reads only)."""
    now = now or timezone.now()
    window_to = now - timedelta(seconds=target.settle_seconds)
    window_from = window_to - timedelta(minutes=target.window_minutes)
    result = Evaluation(
        target_id=target.pk,
        evaluated_at=now.isoformat(),
        window_from=window_from.isoformat(),
        window_to=window_to.isoformat(),
    )
    tenants = _tenants_for(target)
    if not tenants:
        return result
    by_schema = {t.schema_name: t.pk for t in tenants}
    qn = connection.ops.quote_name
    params: dict[str, Any] = {
        "start": window_from,
        "end": window_to,
        "now": now,
        "p": target.latency_percentile / 100,
        "max_latency": target.max_latency_seconds or 0,
        "not_judged": list(NOT_JUDGED),
        "channel": target.channel_id,
    }
    channel_sql = " AND channel_id = %(channel)s" if target.channel_id else ""
    parts = []
    for i, schema in enumerate(by_schema):
        params[f"s{i}"] = schema
        parts.append(
            f"SELECT %(s{i})s::text AS schema, channel_id, status, submitted_at, done_at "  # noqa: S608 - quoted names
            f"FROM {qn(schema)}.delivery_message WHERE created_at >= %(start)s AND created_at < %(end)s "
            f"AND channel_id IS NOT NULL AND NOT (status = ANY(%(not_judged)s)){channel_sql}"
        )
    sql = f"""
        WITH m AS ({" UNION ALL ".join(parts)}),
        l AS (
            SELECT schema, channel_id, status,
                   CASE WHEN submitted_at IS NULL THEN NULL
                        ELSE greatest(extract(epoch FROM coalesce(done_at, %(now)s) - submitted_at), 0) END AS latency
            FROM m
        )
        SELECT schema, channel_id, GROUPING(schema, channel_id) AS is_total,
               count(*) AS judged,
               count(*) FILTER (WHERE status = 'delivered') AS delivered,
               count(latency) AS latency_count,
               count(*) FILTER (WHERE latency > %(max_latency)s) AS slow,
               percentile_cont(%(p)s) WITHIN GROUP (ORDER BY latency) AS latency
        FROM l GROUP BY GROUPING SETS ((schema, channel_id), ())
    """  # noqa: S608 - schema names quoted, values bound
    groups: list[Group] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for schema, channel_id, is_total, judged, delivered, latency_count, slow, latency in cursor.fetchall():
            if is_total:
                result.judged, result.delivered, result.latency_count = judged, delivered, latency_count
                result.latency = None if latency is None else round(float(latency), 3)
            else:
                groups.append(Group(by_schema[schema], channel_id, judged, delivered, slow))
    if result.judged:
        result.delivery_rate = round(100 * result.delivered / result.judged, 2)
    if result.judged < target.min_messages:
        return result
    rate_breached = target.min_delivery_rate is not None and Decimal(str(result.delivery_rate)) < (
        target.min_delivery_rate
    )
    latency_breached = (
        target.max_latency_seconds is not None
        and result.latency_count >= target.min_messages
        and result.latency is not None
        and result.latency > target.max_latency_seconds
    )
    if rate_breached:
        result.breaches.append(f"delivery rate {result.delivery_rate}% < {target.min_delivery_rate}%")
    if latency_breached:
        result.breaches.append(
            f"p{target.latency_percentile} receipt latency {result.latency:.0f} s > {target.max_latency_seconds} s"
        )
    result.verdict = "breached" if result.breaches else "ok"
    if result.breaches:
        # Affected: who had an undelivered message (rate) or a slow one (latency) in the window.
        bad = [g for g in groups if (rate_breached and g.delivered < g.judged) or (latency_breached and g.slow > 0)]
        result.affected_tenant_ids = sorted({g.tenant_id for g in bad})
        result.affected_channel_ids = sorted({g.channel_id for g in bad})
    return result


# --- the periodic job ------------------------------------------------------------------------


def evaluate_service_levels(*, now: datetime | None = None) -> list[Evaluation]:
    """Evaluate every enabled target; open, extend or mark recovered its incident (R-DLV-8)."""
    now = now or timezone.now()
    results = []
    for target in ServiceLevelTarget.objects.filter(enabled=True).select_related("tenant").order_by("pk"):
        try:
            results.append(evaluate_target(target=target, now=now))
        except DomainError:
            log.exception("service level target %s could not be evaluated", target.pk)
    return results


def evaluate_target(*, target: ServiceLevelTarget, now: datetime | None = None) -> Evaluation:
    now = now or timezone.now()
    result = measure(target=target, now=now)
    with transaction.atomic():
        target = ServiceLevelTarget.objects.select_for_update().get(pk=target.pk)
        target.last_evaluated_at, target.last_result = now, result.as_dict()
        if result.verdict == "breached":
            target.breached_since = target.breached_since or now
            _on_breach(target=target, result=result, now=now)
        elif result.verdict == "ok":
            if target.breached_since is not None:
                _on_recovery(target=target, result=result, now=now)
            target.breached_since = None
        target.save(update_fields=["last_evaluated_at", "last_result", "breached_since"])
    return result


def _window_start(result: Evaluation) -> datetime:
    return datetime.fromisoformat(result.window_from)


def _on_breach(*, target: ServiceLevelTarget, result: Evaluation, now: datetime) -> None:
    incident = Incident.objects.select_for_update().filter(target=target, state=IncidentState.OPEN).first()
    tenants = list(Tenant.objects.filter(pk__in=result.affected_tenant_ids))
    channels = list(Channel.objects.filter(pk__in=result.affected_channel_ids))
    summary = "; ".join(result.breaches)
    if incident is None:
        incident = open_incident(
            title=f"{target.name}: {summary}"[:200],
            started_at=_window_start(result) if target.breached_since == now else now,
            channels=channels,
            tenants=tenants,
            impact=f"Service level breached: {summary}.",
            actor=SYSTEM,
            target=target,
            measurements={"opened_with": result.as_dict(), "worst": result.as_dict()},
        )
        _alert_operators(subject=f"[SLA] breached: {target.name}", incident=incident, result=result)
        return
    measurements = dict(incident.measurements or {})
    measurements["latest"] = result.as_dict()
    worst = measurements.get("worst") or {}
    if (result.delivery_rate or 100) < (worst.get("delivery_rate") or 100) or (result.latency or 0) > (
        worst.get("latency") or 0
    ):
        measurements["worst"] = result.as_dict()
    incident.measurements = measurements
    again = incident.recovered_at is not None
    incident.recovered_at = None
    incident.save(update_fields=["measurements", "recovered_at"])
    add_to_incident(incident=incident, channels=channels, tenants=tenants, actor=SYSTEM)
    if again:
        _alert_operators(subject=f"[SLA] breached again: {target.name}", incident=incident, result=result)


def _on_recovery(*, target: ServiceLevelTarget, result: Evaluation, now: datetime) -> None:
    incident = Incident.objects.select_for_update().filter(target=target, state=IncidentState.OPEN).first()
    record_operation(
        actor=SYSTEM,
        action="service_level.recovered",
        tenant=target.tenant,
        obj=target,
        after=result.as_dict(),
    )
    if incident is None or incident.recovered_at is not None:
        return
    incident.recovered_at = now
    incident.save(update_fields=["recovered_at"])
    _alert_operators(
        subject=f"[SLA] recovered: {target.name} (close incident {incident.pk})", incident=incident, result=result
    )


def _alert_operators(*, subject: str, incident: Incident, result: Evaluation) -> None:
    """E-mail ADMINS after commit (R-DLV-8: faults alerted around the clock); the trail has the record."""
    body = (
        f"Incident {incident.pk}: {incident.title}\n"
        f"Started: {incident.started_at.isoformat()}\n"
        f"Window: {result.window_from} .. {result.window_to}\n"
        f"Judged messages: {result.judged}, delivered: {result.delivered}, rate: {result.delivery_rate}%\n"
        f"Receipt latency: {result.latency} s over {result.latency_count} messages\n"
        f"Breaches: {'; '.join(result.breaches) or 'none'}\n"
        f"Affected tenants: {len(result.affected_tenant_ids)}, channels: {result.affected_channel_ids}\n"
        "Admin: Delivery → Incidents."
    )
    record_operation(
        actor=SYSTEM,
        action="service_level.breach" if result.breaches else "service_level.alert",
        obj=incident,
        reason=subject,
        after=result.as_dict(),
    )

    def send():
        try:
            mail_admins(subject, body)
        except Exception:  # SMTP down must not undo the incident record; the trail still has it
            log.exception("service-level alert e-mail failed: %s", subject)

    transaction.on_commit(send, robust=True)


# --- incidents -------------------------------------------------------------------------------


def _incident_text(incident: Incident) -> dict[str, str]:
    start = timezone.localtime(incident.started_at).strftime("%Y-%m-%d %H:%M")
    channels = ", ".join(c.name for c in incident.channels.all()) or "-"
    return {
        "subject_zh": f"服务故障通知：{start} 起",
        "subject_en": f"Service incident since {start}",
        "body_zh": f"自 {start} 起，短信下发服务出现异常（通道：{channels}），部分短信可能延迟或失败。"
        "我们正在处理，恢复后将另行通知。",
        "body_en": f"Since {start} message delivery has been impaired (channels: {channels}); some messages may be "
        f"delayed or fail. {incident.impact} We are working on it and will tell you when service has recovered.",
    }


def _announce(*, incident: Incident, tenants: list[Tenant], actor: Actor) -> None:
    """The incident notice (R-DLV-7) to each affected tenant, once per incident and tenant."""
    text = _incident_text(incident)
    for tenant in tenants:
        if tenant.state == TenantState.TERMINATED:
            continue
        from tenants.notices import notify

        notify(
            tenant=tenant,
            kind=NoticeKind.INCIDENT,
            data={"incident_id": incident.pk, "started_at": incident.started_at.isoformat()},
            dedupe_key=f"incident:{incident.pk}",
            actor=actor,
            **text,
        )


def open_incident(
    *,
    title: str,
    started_at: datetime,
    actor: Actor,
    channels: list[Channel] = (),
    tenants: list[Tenant] = (),
    impact: str = "",
    cause: str = IncidentCause.UNKNOWN,
    target: ServiceLevelTarget | None = None,
    measurements: dict | None = None,
) -> Incident:
    """Record an incident and announce it to the affected tenants (R-DLV-8)."""
    if not title.strip():
        raise IncidentError("Give the incident a title.", details={"field": "title"})
    if cause not in IncidentCause.values:
        raise IncidentError(f"Unknown cause {cause!r}.", details={"field": "cause", "causes": IncidentCause.values})
    if started_at > timezone.now() + timedelta(minutes=5):
        raise IncidentError("An incident cannot start in the future.", details={"field": "started_at"})
    with transaction.atomic():
        incident = Incident.objects.create(
            title=title[:200],
            started_at=started_at,
            impact=impact,
            cause=cause,
            target=target,
            measurements=measurements or {},
            opened_by_label=actor.label,
        )
        incident.channels.set(channels)
        incident.tenants.set(tenants)
        record_operation(
            actor=actor,
            action="incident.open",
            obj=incident,
            after={
                "title": incident.title,
                "started_at": started_at.isoformat(),
                "channels": sorted(c.pk for c in channels),
                "tenants": sorted(t.pk for t in tenants),
                "cause": cause,
                "target": target.pk if target else None,
            },
        )
        _announce(incident=incident, tenants=list(tenants), actor=actor)
    return incident


def add_to_incident(
    *, incident: Incident, actor: Actor, channels: list[Channel] = (), tenants: list[Tenant] = ()
) -> Incident:
    """Widen an open incident; newly affected tenants are told (once)."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.state != IncidentState.OPEN:
            raise IncidentClosed(details={"incident_id": incident.pk})
        known_tenants = set(incident.tenants.values_list("pk", flat=True))
        known_channels = set(incident.channels.values_list("pk", flat=True))
        new_tenants = [t for t in tenants if t.pk not in known_tenants]
        new_channels = [c for c in channels if c.pk not in known_channels]
        if not new_tenants and not new_channels:
            return incident
        incident.tenants.add(*new_tenants)
        incident.channels.add(*new_channels)
        record_operation(
            actor=actor,
            action="incident.extend",
            obj=incident,
            after={"tenants": sorted(t.pk for t in new_tenants), "channels": sorted(c.pk for c in new_channels)},
        )
        _announce(incident=incident, tenants=new_tenants, actor=actor)
    return incident


def close_incident(
    *,
    incident: Incident,
    actor: Actor,
    resolution: str,
    impact: str = "",
    cause: str | None = None,
    ended_at: datetime | None = None,
) -> Incident:
    """An operator closes an incident: end time, impact, cause; the affected tenants get the
    recovery notice (R-DLV-7/8)."""
    if not resolution.strip():
        raise IncidentError("Say how the incident was resolved.", details={"field": "resolution"})
    if cause is not None and cause not in IncidentCause.values:
        raise IncidentError(f"Unknown cause {cause!r}.", details={"field": "cause", "causes": IncidentCause.values})
    now = timezone.now()
    ended_at = ended_at or now
    if ended_at > now + timedelta(minutes=5):
        raise IncidentError("An incident cannot end in the future.", details={"field": "ended_at"})
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.state != IncidentState.OPEN:
            raise IncidentClosed(details={"incident_id": incident.pk})
        if ended_at < incident.started_at:
            raise IncidentError("The incident cannot end before it started.", details={"field": "ended_at"})
        before = {"state": incident.state, "cause": incident.cause, "impact": incident.impact}
        incident.state, incident.ended_at, incident.resolution = IncidentState.CLOSED, ended_at, resolution
        incident.closed_by_label = actor.label
        if impact.strip():
            incident.impact = impact
        if cause is not None:
            incident.cause = cause
        incident.save()
        record_operation(
            actor=actor,
            action="incident.close",
            obj=incident,
            reason=resolution,
            before=before,
            after={
                "state": incident.state,
                "cause": incident.cause,
                "impact": incident.impact,
                "ended_at": str(ended_at),
            },
        )
        start = timezone.localtime(incident.started_at).strftime("%Y-%m-%d %H:%M")
        end = timezone.localtime(ended_at).strftime("%Y-%m-%d %H:%M")
        from tenants.notices import notify

        for tenant in incident.tenants.exclude(state=TenantState.TERMINATED):
            notify(
                tenant=tenant,
                kind=NoticeKind.RECOVERY,
                subject_zh=f"服务已恢复：{start} 至 {end} 的故障",
                subject_en=f"Service recovered: incident {start} to {end}",
                body_zh=f"{start} 至 {end} 的短信下发故障已恢复。{incident.resolution}",
                body_en=f"The delivery incident from {start} to {end} is resolved. {incident.impact} "
                f"{incident.resolution}",
                data={
                    "incident_id": incident.pk,
                    "started_at": incident.started_at.isoformat(),
                    "ended_at": ended_at.isoformat(),
                    "cause": incident.cause,
                },
                dedupe_key=f"incident:{incident.pk}:recovery",
                actor=actor,
            )
    return incident


def compensate(*, incident: Incident, tenant: Tenant, amount: int, reason: str, actor: Actor) -> IncidentCompensation:
    """Credit a tenant for an incident that was the platform's own fault (R-DLV-8, R-BIL-5):
    one billing ledger entry (billing.services.adjust, idempotent per incident and tenant)."""
    from billing.services import adjust

    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise CompensationRefused(
            "Compensation is a positive whole number of micro-units.", details={"field": "amount"}
        )
    if not reason.strip():
        raise CompensationRefused("Give the reason for the compensation.", details={"field": "reason"})
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.cause != IncidentCause.PLATFORM:
            raise CompensationRefused(
                "Only the platform's own faults are compensated: set the incident's cause to platform first.",
                code="not_platform_fault",
                details={"cause": incident.cause},
            )
        if not incident.tenants.filter(pk=tenant.pk).exists():
            raise CompensationRefused(
                "This tenant is not among the incident's affected tenants.", code="tenant_not_affected"
            )
        if IncidentCompensation.objects.filter(incident=incident, tenant=tenant).exists():
            raise CompensationRefused(
                "This tenant was already compensated for this incident.", code="already_compensated"
            )
        entry = adjust(
            tenant=tenant,
            amount=amount,
            actor=actor,
            reason=f"incident {incident.pk} compensation: {reason}",
            idempotency_key=f"incident:{incident.pk}:tenant:{tenant.pk}",
        )
        item = IncidentCompensation.objects.create(
            incident=incident,
            tenant=tenant,
            amount=amount,
            reason=reason,
            ledger_entry_id=entry.pk,
            created_by_label=actor.label,
        )
        record_operation(
            actor=actor,
            action="incident.compensate",
            tenant=tenant,
            obj=item,
            reason=reason,
            after={"incident": incident.pk, "amount": amount, "ledger_entry": entry.pk},
        )
    return item
