"""Read paths of billing: prices, balances, statements and bills (R-BIL-4, R-BIL-7, R-BIL-8).

Everything is computed from the ledger and the holds; nothing here writes.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from tenants.models import Tenant

from .errors import NoPrice
from .models import Account, EntryKind, Hold, HoldState, LedgerEntry, PackageGrant, PackageState, Plan, Price


def account_of(*, tenant: Tenant) -> Account | None:
    return Account.objects.filter(tenant=tenant).first()


def balance_of(*, tenant: Tenant) -> int:
    """Spendable cash in micro-units (what a new hold can take). Held funds are not included."""
    account = Account.objects.filter(tenant=tenant).values_list("balance", flat=True).first()
    return account or 0


def plan_of(*, tenant: Tenant) -> Plan | None:
    plan_id = Account.objects.filter(tenant=tenant).values_list("plan_id", flat=True).first()
    if plan_id is not None:
        return Plan.objects.get(pk=plan_id)
    return Plan.objects.filter(is_default=True).first()


def price_for(
    *, tenant: Tenant, message_type: str, country: str, carrier: str | None = None, at: datetime | None = None
) -> Price:
    """R-BIL-4: the unit price (per segment) in force at `at` (default now) for the tenant's plan.

    A carrier-specific price wins over the any-carrier price of the same destination.
    Raises NoPrice (422) when nothing is in force.
    """
    at = at or timezone.now()
    plan = plan_of(tenant=tenant)
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
    """Cash charged (captured) in a month: the base of the 10% compensation cap (R-BIL-8)."""
    start, end = month_bounds(month.year, month.month)
    total = LedgerEntry.objects.filter(
        account=account, kind=EntryKind.CAPTURE, created_at__gte=start, created_at__lt=end
    ).aggregate(total=Sum("held_delta"))["total"]
    return -(total or 0)


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
        charges=total("held_delta", kind=EntryKind.CAPTURE),
        refunds=total("amount", kind=EntryKind.REFUND),
        penalties=total("amount", kind=EntryKind.PENALTY),
        forfeits=total("amount", kind=EntryKind.FORFEIT),
        compensations=total("amount", kind=EntryKind.COMPENSATION),
        adjustments=total("amount", kind=EntryKind.ADJUST),
        balance=total("amount"),
        held=total("held_delta"),
    )
    usage = billed_summary(tenant=tenant, start=start, end=end)
    opening_funds = opening["balance"] + opening["held"]
    closing_balance = opening["balance"] + sums["balance"]
    closing_held = opening["held"] + sums["held"]
    return {
        "month": f"{year:04d}-{month:02d}",
        "currency": "CNY",
        "opening": opening_funds,
        "top_ups": sums["top_ups"],
        "package_purchases": -sums["package_purchases"],
        "charges": -sums["charges"],
        "refunds": -sums["refunds"],
        "penalties": -sums["penalties"],
        "forfeits": -sums["forfeits"],
        "compensations": sums["compensations"],
        "adjustments": sums["adjustments"],
        "closing": closing_balance + closing_held,
        "closing_balance": closing_balance,
        "closing_held": closing_held,
        "captured_messages": usage["captured_messages"],
        "captured_segments": usage["captured_segments"],
        "package_segments": usage["package_segments"],
    }


def billed_summary(*, tenant: Tenant, start: datetime, end: datetime) -> dict:
    """What was billed in [start, end): captured holds (for the reconciliation report, R-BIL-8)."""
    row = Hold.objects.filter(
        tenant=tenant, state=HoldState.CAPTURED, settled_at__gte=start, settled_at__lt=end
    ).aggregate(
        captured_messages=Count("id"),
        captured_segments=Coalesce(Sum("segments"), 0),
        package_segments=Coalesce(Sum("package_segments"), 0),
        amount=Coalesce(Sum("amount"), 0),
    )
    return row


def billed_messages(*, tenant: Tenant, year: int, month: int) -> QuerySet[Hold]:
    """R-BIL-7/8: the detailed bill: every captured message of the month with its carrier id."""
    start, end = month_bounds(year, month)
    return Hold.objects.filter(
        tenant=tenant, state=HoldState.CAPTURED, settled_at__gte=start, settled_at__lt=end
    ).order_by("settled_at", "id")


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


def reconciliation_for(*, tenant: Tenant, year: int, month: int) -> dict:
    """R-BIL-8 (no short-counting): the month's messages side by side — submitted to us, accepted
    by the carrier, delivered — and what was billed for exactly those messages. `billed_segments`
    must equal `carrier_accepted_segments`: we bill only what the carrier accepted, all of it.

    Messages are taken by acceptance time; their holds are joined by id, so a message accepted
    on the 31st and captured on the 1st counts in the month it was sent.
    """
    from django_tenants.utils import tenant_context

    from delivery.models import Message  # delivery calls billing; the report reads delivery's rows

    start, end = month_bounds(year, month)
    with tenant_context(tenant):
        messages = Message.objects.filter(created_at__gte=start, created_at__lt=end, hold_id__isnull=False)
        sent = messages.aggregate(
            submitted=Count("id"),
            submitted_segments=Coalesce(Sum("segments"), 0),
            carrier_accepted=Count("id", filter=Q(submitted_at__isnull=False)),
            carrier_accepted_segments=Coalesce(Sum("segments", filter=Q(submitted_at__isnull=False)), 0),
            delivered=Count("id", filter=Q(status="delivered")),
        )
        billed = Hold.objects.filter(
            tenant=tenant, state=HoldState.CAPTURED, id__in=messages.values("hold_id")
        ).aggregate(
            billed=Count("id"), billed_segments=Coalesce(Sum("segments"), 0), billed_amount=Coalesce(Sum("amount"), 0)
        )
    report = {"month": f"{year:04d}-{month:02d}", **sent, **billed}
    report["matches"] = report["billed_segments"] == report["carrier_accepted_segments"]
    return report
