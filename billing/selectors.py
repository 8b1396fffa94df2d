"""Read paths of billing: prices, balances, statements and bills (R-BIL-4, R-BIL-7, R-BIL-8).

Everything is computed from the ledger and the holds; nothing here writes.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from tenants.models import Tenant

from .errors import NoPrice
from .models import (
    Account,
    Currency,
    EntryKind,
    Hold,
    HoldState,
    LedgerEntry,
    PackageGrant,
    PackageState,
    Plan,
    PlanAssignment,
    Price,
    Receivable,
    ReceivableState,
)


def account_of(*, tenant: Tenant) -> Account | None:
    return Account.objects.filter(tenant=tenant).first()


def balance_of(*, tenant: Tenant) -> int:
    """Spendable cash in micro-units (what a new hold can take). Held funds are not included."""
    account = Account.objects.filter(tenant=tenant).values_list("balance", flat=True).first()
    return account or 0


def default_plan_at(*, at: datetime | None = None) -> Plan | None:
    """The default plan in force at `at` (R-BIL-4: a new default is announced like a price)."""
    at = at or timezone.now()
    row = (
        PlanAssignment.objects.filter(account__isnull=True, effective_from__lte=at)
        .select_related("plan")
        .order_by("-effective_from", "-id")
        .first()
    )
    return row.plan if row is not None else Plan.objects.filter(is_default=True).first()


def own_plan_at(*, tenant: Tenant, at: datetime | None = None) -> Plan | None:
    """The tenant's own plan at `at`, None when it pays by the default."""
    at = at or timezone.now()
    row = (
        PlanAssignment.objects.filter(account__tenant=tenant, effective_from__lte=at)
        .select_related("plan")
        .order_by("-effective_from", "-id")
        .first()
    )
    if row is not None:
        return row.plan
    plan_id = Account.objects.filter(tenant=tenant).values_list("plan_id", flat=True).first()
    return Plan.objects.get(pk=plan_id) if plan_id is not None else None


def plan_of(*, tenant: Tenant, at: datetime | None = None) -> Plan | None:
    """The plan the tenant pays by at `at` (default now): its own, else the default."""
    return own_plan_at(tenant=tenant, at=at) or default_plan_at(at=at)


def prices_for(*, tenant: Tenant, now: datetime | None = None) -> dict:
    """R-BIL-4: what the tenant pays now, and every announced change with its effective date
    (new prices on its plan, a new plan of its own or a new default plan it would follow)."""
    now = now or timezone.now()
    plan = plan_of(tenant=tenant, at=now)
    account = account_of(tenant=tenant)
    current: list[Price] = []
    announced: list[Price] = []
    if plan is not None:
        seen = set()
        for price in Price.objects.filter(plan=plan, effective_from__lte=now).order_by(
            "message_type", "country", "carrier", "-effective_from", "-id"
        ):
            where = (price.message_type, price.country, price.carrier)
            if where not in seen:
                seen.add(where)
                current.append(price)
    own = PlanAssignment.objects.filter(account__tenant=tenant, effective_from__gt=now)
    default = PlanAssignment.objects.filter(account__isnull=True, effective_from__gt=now)
    changes = list(own.select_related("plan")) + list(default.select_related("plan"))
    future_plans = {plan.pk} if plan else set()
    future_plans |= {a.plan_id for a in changes if a.plan_id}
    announced = list(
        Price.objects.filter(plan_id__in=future_plans, effective_from__gt=now)
        .select_related("plan")
        .order_by("effective_from", "id")
    )
    return {
        "currency": account.currency if account else Currency.CNY,
        "plan": plan.code if plan else None,
        "current": current,
        "announced": announced,
        "plan_changes": [
            {
                "scope": "account" if a.account_id else "default",
                "plan": a.plan.code if a.plan_id else None,
                "effective_from": a.effective_from,
                "announced_at": a.announced_at,
            }
            for a in sorted(changes, key=lambda a: a.effective_from)
        ],
    }


def price_for(
    *, tenant: Tenant, message_type: str, country: str, carrier: str | None = None, at: datetime | None = None
) -> Price:
    """R-BIL-4: the unit price (per segment) in force at `at` (default now) for the tenant's plan.

    A carrier-specific price wins over the any-carrier price of the same destination.
    Raises NoPrice (422) when nothing is in force.
    """
    at = at or timezone.now()
    plan = plan_of(tenant=tenant, at=at)
    if plan is None:
        raise NoPrice(details={"message_type": message_type, "country": country, "reason": "no plan"})
    carriers = [""] + ([carrier] if carrier else [])
    candidates = list(
        Price.objects.filter(
            plan=plan, message_type=message_type, country=country.upper(), carrier__in=carriers, effective_from__lte=at
        ).order_by("-effective_from", "-id")[:20]
    )
    specific = [p for p in candidates if p.carrier]
    chosen = (specific or candidates or [None])[0]
    if chosen is None:
        raise NoPrice(details={"message_type": message_type, "country": country, "carrier": carrier, "plan": plan.code})
    return chosen


def active_packages(*, tenant: Tenant, now: datetime | None = None) -> QuerySet[PackageGrant]:
    now = now or timezone.now()
    return (
        PackageGrant.objects.filter(account__tenant=tenant, state=PackageState.ACTIVE, expires_at__gt=now)
        .select_related("product")
        .order_by("expires_at", "id")
    )


def entries_of(*, tenant: Tenant) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(account__tenant=tenant).order_by("-created_at", "-id")


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """Start and end of a calendar month in the platform's time zone (settings.TIME_ZONE)."""
    tz = timezone.get_default_timezone()
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return start, end


def month_usage(*, account: Account, month: date) -> int:
    """R-BIL-8: what the month's sends were worth, the base of the 10% compensation cap: every
    segment billed in the month at its unit price, whether cash or a package paid for it."""
    start, end = month_bounds(month.year, month.month)
    total = Hold.objects.filter(
        account=account, state=HoldState.CAPTURED, settled_at__gte=start, settled_at__lt=end
    ).aggregate(total=Sum(F("captured_segments") * F("unit_price")))["total"]
    return total or 0


def statement_for(*, tenant: Tenant, year: int, month: int) -> dict:
    """R-BIL-7: the monthly statement, entirely from the ledger.

    Funds = balance + held. opening + top_ups − package_purchases − charges − refunds − penalties
    − forfeits + compensations + adjustments = closing. Holds and releases only move money
    between balance and held, so they do not appear as lines.
    """
    start, end = month_bounds(year, month)
    entries = LedgerEntry.objects.filter(account__tenant=tenant)

    def total(field, **filters):
        return Coalesce(Sum(field, filter=Q(**filters)), 0)

    opening = entries.filter(created_at__lt=start).aggregate(balance=total("amount"), held=total("held_delta"))
    sums = entries.filter(created_at__gte=start, created_at__lt=end).aggregate(
        top_ups=total("amount", kind=EntryKind.TOPUP),
        package_purchases=total("amount", kind=EntryKind.PACKAGE),
        charges=Coalesce(Sum(F("amount") + F("held_delta"), filter=Q(kind=EntryKind.CAPTURE)), 0),
        collections=total("amount", kind=EntryKind.COLLECTION),
        refunds=total("amount", kind=EntryKind.REFUND),
        penalties=total("amount", kind=EntryKind.PENALTY),
        forfeits=total("amount", kind=EntryKind.FORFEIT),
        compensations=total("amount", kind=EntryKind.COMPENSATION),
        adjustments=total("amount", kind=EntryKind.ADJUST),
        balance=total("amount"),
        held=total("held_delta"),
    )
    usage = billed_summary(tenant=tenant, start=start, end=end)
    currency = Account.objects.filter(tenant=tenant).values_list("currency", flat=True).first() or Currency.CNY
    owed = Receivable.objects.filter(account__tenant=tenant, created_at__lt=end).exclude(
        state=ReceivableState.SETTLED, settled_at__lt=end
    )
    # Outstanding at the end of the month: assessed before it ends, minus what was collected
    # before it ends (collections are ledger entries pointing at their receivable).
    assessed = owed.aggregate(total=Coalesce(Sum("amount"), 0))["total"]
    collected_then = entries.filter(
        kind=EntryKind.COLLECTION, created_at__lt=end, details__receivable__in=list(owed.values_list("pk", flat=True))
    ).aggregate(total=Coalesce(Sum("amount"), 0))["total"]
    opening_funds = opening["balance"] + opening["held"]
    closing_balance = opening["balance"] + sums["balance"]
    closing_held = opening["held"] + sums["held"]
    return {
        "month": f"{year:04d}-{month:02d}",
        "currency": currency,
        "opening": opening_funds,
        "top_ups": sums["top_ups"],
        "package_purchases": -sums["package_purchases"],
        "charges": -sums["charges"],
        "refunds": -sums["refunds"],
        "penalties": -sums["penalties"],
        "forfeits": -sums["forfeits"],
        "compensations": sums["compensations"],
        "adjustments": sums["adjustments"],
        "collections": -sums["collections"],
        "receivables_outstanding": assessed + collected_then,
        "closing": closing_balance + closing_held,
        "closing_balance": closing_balance,
        "closing_held": closing_held,
        "captured_messages": usage["captured_messages"],
        "captured_segments": usage["captured_segments"],
        "package_segments": usage["package_segments"],
    }


def billed_summary(*, tenant: Tenant, start: datetime, end: datetime) -> dict:
    """What was billed in [start, end): captured holds, counted by the segments the carrier
    accepted (R-BIL-2/8), cash and package segments."""
    row = Hold.objects.filter(
        tenant=tenant, state=HoldState.CAPTURED, settled_at__gte=start, settled_at__lt=end
    ).aggregate(
        captured_messages=Count("id"),
        captured_segments=Coalesce(Sum("captured_segments"), 0),
        package_segments=Coalesce(Sum("package_charged"), 0),
        amount=Coalesce(Sum("charged"), 0),
    )
    return row


def billed_messages(*, tenant: Tenant, year: int, month: int) -> QuerySet[Hold]:
    """R-BIL-7/8: the detailed bill: every captured message of the month with its carrier id."""
    start, end = month_bounds(year, month)
    return Hold.objects.filter(
        tenant=tenant, state=HoldState.CAPTURED, settled_at__gte=start, settled_at__lt=end
    ).order_by("settled_at", "id")


def bill_evidence(*, tenant: Tenant, hold_ids: list[int]) -> dict[int, dict]:
    """R-BIL-7/8: for billed holds, the message's status and every part the carrier accepted
    (carrier id, receipt state): the evidence a customer checks the bill against."""
    from django_tenants.utils import tenant_context

    from delivery.models import Message, MessagePart

    if not hold_ids:
        return {}
    found: dict[int, dict] = {}
    with tenant_context(tenant):
        messages = dict(Message.objects.filter(hold_id__in=hold_ids).values_list("pk", "hold_id"))
        statuses = dict(Message.objects.filter(hold_id__in=hold_ids).values_list("hold_id", "status"))
        for hold_id in hold_ids:
            found[hold_id] = {"message_id": None, "status": statuses.get(hold_id, ""), "parts": []}
        for message_id, hold_id in messages.items():
            found[hold_id]["message_id"] = message_id
        for part in (
            MessagePart.objects.filter(message_id__in=list(messages))
            .exclude(carrier_message_id="")
            .order_by("message_id", "part")
            .values("message_id", "part", "carrier_message_id", "status", "stat")
        ):
            found[messages[part["message_id"]]]["parts"].append(
                {
                    "part": part["part"],
                    "carrier_message_id": part["carrier_message_id"],
                    "receipt": part["stat"] or part["status"],
                }
            )
    return found


def ledger_is_consistent(*, account: Account) -> bool:
    """balance == sum(amount) and held == sum(held_delta) (R-BIL-9); used by tests and checks."""
    account.refresh_from_db()
    sums = account.entries.aggregate(balance=Coalesce(Sum("amount"), 0), held=Coalesce(Sum("held_delta"), 0))
    held_holds = account.holds.filter(state=HoldState.HELD).aggregate(total=Coalesce(Sum("amount"), 0))["total"]
    return (
        sums["balance"] == account.balance
        and sums["held"] == account.held == held_holds
        and account.balance >= 0
        and account.held >= 0
    )


MISMATCH_LIMIT = 1000  # the report lists at most this many messages (the count is exact)


def reconciliation_for(*, tenant: Tenant, year: int, month: int) -> dict:
    """R-BIL-8 (no short-counting): per month and per message, the parts the carrier accepted
    (delivery's MessagePart rows: carrier id, receipt state) against the parts billed (the
    hold's captured segments). Every message where they differ is listed in `mismatches`;
    `matches` is true only when there is none.

    Messages are taken by acceptance time; their holds are joined by id, so a message accepted
    on the 31st and captured on the 1st counts in the month it was sent. A message marked
    submitted without part rows (written before parts were recorded) counts all its segments
    as accepted.
    """
    from django_tenants.utils import tenant_context

    from delivery.models import Message, MessagePart  # delivery calls billing; the report reads delivery's rows

    start, end = month_bounds(year, month)
    totals = {
        "submitted": 0,
        "submitted_segments": 0,
        "carrier_accepted": 0,
        "carrier_accepted_segments": 0,
        "delivered": 0,
        "delivered_parts": 0,
        "billed": 0,
        "billed_segments": 0,
        "billed_package_segments": 0,
        "billed_amount": 0,
    }
    mismatches: list[dict] = []
    count = 0
    sql = f"""
        SELECT m.id, m.hold_id, m.segments, m.status, m.submitted_at IS NOT NULL,
               COALESCE(p.accepted, 0), COALESCE(p.delivered, 0), p.ids, p.receipts,
               h.state, COALESCE(h.captured_segments, 0), COALESCE(h.charged, 0), COALESCE(h.package_charged, 0)
        FROM {Message._meta.db_table} m
        LEFT JOIN (
            SELECT message_id, COUNT(DISTINCT part) AS accepted,
                   COUNT(DISTINCT part) FILTER (WHERE stat = 'DELIVRD' OR status = 'delivered') AS delivered,
                   array_agg(carrier_message_id ORDER BY part) AS ids,
                   array_agg(COALESCE(NULLIF(stat, ''), status) ORDER BY part) AS receipts
            FROM {MessagePart._meta.db_table} WHERE carrier_message_id <> '' GROUP BY message_id
        ) p ON p.message_id = m.id
        LEFT JOIN {Hold._meta.db_table} h ON h.id = m.hold_id AND h.tenant_id = %s
        WHERE m.created_at >= %s AND m.created_at < %s AND m.hold_id IS NOT NULL
        ORDER BY m.id"""  # noqa: S608 - table names from model meta
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(sql, [tenant.pk, start, end])
        for row in cursor:
            (mid, hold_id, segments, status, submitted, parts, delivered_parts, ids, receipts) = row[:9]
            hold_state, captured, charged, package_charged = row[9:]
            accepted = parts if parts else (segments if submitted else 0)
            billed = captured if hold_state == HoldState.CAPTURED else 0
            totals["submitted"] += 1
            totals["submitted_segments"] += segments
            totals["carrier_accepted"] += accepted > 0
            totals["carrier_accepted_segments"] += accepted
            totals["delivered"] += status == "delivered"
            totals["delivered_parts"] += delivered_parts
            totals["billed"] += billed > 0
            totals["billed_segments"] += billed
            if billed:
                totals["billed_package_segments"] += package_charged
                totals["billed_amount"] += charged
            if accepted != billed:
                count += 1
                if len(mismatches) < MISMATCH_LIMIT:
                    mismatches.append(
                        {
                            "message_id": mid,
                            "hold_id": hold_id,
                            "status": status,
                            "hold_state": hold_state or "",
                            "carrier_accepted_parts": accepted,
                            "billed_parts": billed,
                            "difference": billed - accepted,
                            "carrier_message_ids": list(ids or []),
                            "receipts": list(receipts or []),
                        }
                    )
    return {
        "month": f"{year:04d}-{month:02d}",
        **totals,
        "matches": count == 0,
        "mismatch_count": count,
        "mismatches": mismatches,
    }
