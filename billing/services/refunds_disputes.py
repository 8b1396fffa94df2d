"""Refunds (R-BIL-5) and bill disputes (R-BIL-8)."""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from tenants.models import Tenant
from tenants.services import Actor, record_operation

from ..errors import (
    CompensationTooHigh,
    DisputeRefused,
    IdempotencyConflict,
    InvalidAmount,
    InvalidState,
    RefundRefused,
)
from ..models import (
    REFUNDABLE_CAUSES,
    Account,
    Dispute,
    DisputeState,
    EntryKind,
    Invoice,
    InvoiceState,
    LedgerEntry,
    PackageGrant,
    PackageState,
    Refund,
    RefundCause,
    RefundState,
)
from ..money import compensation_cap
from ..selectors import month_usage
from .invoices import _open_invoices
from .ledger import _entry, _locked_account, _save_entries, _start_sweep, _store_account


def _unused_package_value(grant: PackageGrant) -> int:
    """R-BIL-3/5: what the unused part of a package is worth: its price pro rata of the segments
    left (rounded down to the micro-unit; what was used is not refunded)."""
    price = grant.entry.amount * -1 if grant.entry.kind == EntryKind.PACKAGE else grant.product.price
    return price * grant.segments_remaining // grant.segments_total if grant.segments_total else 0


def _complete_refund(refund: Refund, account: Account, actor: Actor) -> Refund:
    """Refund the remaining cash balance and the unused value of active packages (the account is
    locked; R-BIL-5, platform causes only). The packages end (state refunded); the package value
    comes back as a `package` entry (the reverse of the purchase) and leaves with the balance in
    one `refund` entry. Held funds settle later: what a release gives back is refunded in the same
    booking (Account.sweep)."""
    now = timezone.now()
    grants = list(
        PackageGrant.objects.select_related("entry", "product").filter(
            account=account, state=PackageState.ACTIVE, segments_remaining__gt=0
        )
    )
    values = {g.pk: _unused_package_value(g) for g in grants}
    package_value = sum(values.values())
    entries = []
    if package_value:
        entries.append(
            _entry(
                account=account,
                kind=EntryKind.PACKAGE,
                amount=package_value,
                held_delta=0,
                key=f"refund:{refund.pk}#packages",
                actor=actor,
                reason=refund.reason,
                reference=f"refund {refund.pk}: unused package value",
                details={"packages": {str(g.pk): [g.segments_remaining, values[g.pk]] for g in grants}},
            )
        )
    entries.append(
        _entry(
            account=account,
            kind=EntryKind.REFUND,
            amount=-account.balance,
            held_delta=0,
            key=f"refund:{refund.pk}",
            actor=actor,
            reason=refund.reason,
            reference=f"refund {refund.pk} ({refund.cause})",
            details={"cause": refund.cause, "package_value": package_value, "held_in_flight": account.held},
        )
    )
    _save_entries(entries)
    _store_account(account)
    _start_sweep(account, kind=EntryKind.REFUND, reference=f"refund {refund.pk}")
    # Every active package ends, also one whose segments are all held by messages in flight: what
    # those messages do not use never comes back to a package the account no longer has (the same
    # choice as for cash in flight: nothing reappears after a refund; docs/billing.md).
    PackageGrant.objects.filter(account=account, state=PackageState.ACTIVE).update(
        state=PackageState.REFUNDED, segments_remaining=0, ended_at=now
    )
    entry = entries[-1]
    refund.amount, refund.entry, refund.state, refund.completed_at = (
        -entry.amount,
        entry,
        RefundState.COMPLETED,
        now,
    )
    refund.save(update_fields=["amount", "entry", "state", "completed_at"])
    record_operation(
        actor=actor,
        action="billing.refund",
        tenant=account.tenant,
        obj=refund,
        reason=refund.reason,
        after={"cause": refund.cause, "amount": refund.amount, "package_value": package_value},
    )
    return refund


def _violation_record(tenant: Tenant, account: Account) -> str | None:
    """Why this tenant broke the agreement, if it did: terminated or forfeited for a violation
    (R-CMP-6). Read from compliance's enforcement records and the ledger."""
    from compliance.models import EnforcementAction  # compliance books through billing; we only read

    action = (
        EnforcementAction.objects.filter(tenant=tenant, kind__in=["terminate", "forfeit"])
        .order_by("-created_at")
        .first()
    )
    if action is not None:
        return f"{action.kind}: {action.reason}"
    if LedgerEntry.objects.filter(account=account, kind=EntryKind.FORFEIT).exists():
        return "balance forfeited for a violation"
    return None


def request_refund(*, tenant: Tenant, cause: str, actor: Actor, reason: str, idempotency_key: str) -> Refund:
    """R-BIL-5: refund the remaining cash balance and the unused value of packages when the
    platform ends the service or is in breach. Refused for customer-ended accounts and for a
    tenant terminated (or forfeited) for a violation, whatever cause is given. If invoices were
    issued and not all returned, the refund waits (state waiting_invoices) until they are."""
    if cause not in REFUNDABLE_CAUSES:
        raise RefundRefused(f"No refund when the cause is {cause} (R-BIL-5).", details={"cause": cause})
    with transaction.atomic():
        account = _locked_account(tenant)
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.account_id != account.pk:
                raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
            return existing
        violation = _violation_record(tenant, account)
        if violation is not None:
            raise RefundRefused(
                "No refund: the tenant was terminated or forfeited for a violation (R-BIL-5).",
                details={"cause": cause, "violation": violation, "refund_cause": RefundCause.VIOLATION},
            )
        if Refund.objects.filter(account=account, state=RefundState.WAITING_INVOICES).exists():
            raise InvalidState("A refund is already waiting for invoices to be returned.")
        refund = Refund.objects.create(
            account=account,
            cause=cause,
            reason=reason,
            idempotency_key=idempotency_key,
            requested_by=actor.label,
            state=RefundState.WAITING_INVOICES,
        )
        if _open_invoices(account):
            record_operation(
                actor=actor,
                action="billing.refund_waiting",
                tenant=tenant,
                obj=refund,
                reason=reason,
                after={"cause": cause, "open_invoices": _open_invoices(account)},
            )
            return refund
        return _complete_refund(refund, account, actor)


# --- disputes (R-BIL-8) -----------------------------------------------------------------------------


def month_start(moment: datetime) -> date:
    local = timezone.localtime(moment)
    return date(local.year, local.month, 1)


def open_dispute(
    *, tenant: Tenant, month: date, description: str, actor: Actor, now: datetime | None = None
) -> Dispute:
    """R-BIL-8: a tenant disputes the current month's bill (only within that month)."""
    now = now or timezone.now()
    if month.replace(day=1) != month_start(now):
        raise DisputeRefused(details={"month": month.strftime("%Y-%m"), "current": month_start(now).strftime("%Y-%m")})
    with transaction.atomic():
        account = _locked_account(tenant)
        dispute = Dispute.objects.create(
            account=account, month=month.replace(day=1), description=description, created_at=now
        )
        record_operation(
            actor=actor,
            action="billing.open_dispute",
            tenant=tenant,
            obj=dispute,
            reason=description,
            after={"month": dispute.month.isoformat()},
        )
    return dispute


def resolve_dispute(*, dispute: Dispute, compensation: int, resolution: str, actor: Actor) -> Dispute:
    """Close a dispute; compensation (credited to the balance) is capped at 10% of that month's
    usage (R-BIL-8)."""
    if not isinstance(compensation, int) or compensation < 0:
        raise InvalidAmount("Compensation is a whole, non-negative number of micro-units.")
    with transaction.atomic():
        account = Account.objects.select_for_update().select_related("tenant").get(pk=dispute.account_id)
        dispute = Dispute.objects.select_for_update().get(pk=dispute.pk)
        if dispute.state != DisputeState.OPEN:
            raise InvalidState("This dispute is closed.")
        # R-BIL-8: 10% of the month's usage per tenant and month, across all its disputes
        # (the account lock serialises two decisions on the same month).
        cap = compensation_cap(month_usage(account=account, month=dispute.month))
        paid = (
            Dispute.objects.filter(account=account, month=dispute.month, state=DisputeState.RESOLVED).aggregate(
                total=Sum("compensation")
            )["total"]
            or 0
        )
        if compensation > cap - paid:
            raise CompensationTooHigh(
                details={"cap": cap, "already_compensated": paid, "left": max(cap - paid, 0), "requested": compensation}
            )
        if compensation:
            entry = _entry(
                account=account,
                kind=EntryKind.COMPENSATION,
                amount=compensation,
                held_delta=0,
                key=f"dispute:{dispute.pk}",
                actor=actor,
                reason=resolution,
                reference=f"dispute {dispute.month:%Y-%m}",
            )
            _save_entries([entry])
            _store_account(account, credited=True)
            dispute.entry = entry
        dispute.state, dispute.compensation, dispute.resolution = DisputeState.RESOLVED, compensation, resolution
        dispute.resolved_at = timezone.now()
        dispute.save(update_fields=["state", "compensation", "resolution", "resolved_at", "entry"])
        record_operation(
            actor=actor,
            action="billing.resolve_dispute",
            tenant=account.tenant,
            obj=dispute,
            reason=resolution,
            after={"compensation": compensation, "cap": cap, "already_compensated": paid},
        )
    return dispute


def reject_dispute(*, dispute: Dispute, resolution: str, actor: Actor) -> Dispute:
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update().select_related("account__tenant").get(pk=dispute.pk)
        if dispute.state != DisputeState.OPEN:
            raise InvalidState("This dispute is closed.")
        dispute.state, dispute.resolution, dispute.resolved_at = DisputeState.REJECTED, resolution, timezone.now()
        dispute.save(update_fields=["state", "resolution", "resolved_at"])
        record_operation(
            actor=actor, action="billing.reject_dispute", tenant=dispute.account.tenant, obj=dispute, reason=resolution
        )
    return dispute


def return_invoice(*, invoice: Invoice, actor: Actor) -> Invoice:
    """Mark an invoice returned; a refund waiting for the last open invoice completes now (R-BIL-5)."""
    with transaction.atomic():
        account = Account.objects.select_for_update().select_related("tenant").get(pk=invoice.account_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.state != InvoiceState.ISSUED:
            raise InvalidState("This invoice was already returned.")
        invoice.state, invoice.returned_at = InvoiceState.RETURNED, timezone.now()
        invoice.save(update_fields=["state", "returned_at"])
        record_operation(
            actor=actor,
            action="billing.return_invoice",
            tenant=account.tenant,
            obj=invoice,
            after={"number": invoice.number},
        )
        if not _open_invoices(account):
            for refund in Refund.objects.filter(account=account, state=RefundState.WAITING_INVOICES):
                _complete_refund(refund, account, actor)
    return invoice
