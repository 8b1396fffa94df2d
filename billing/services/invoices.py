"""Invoices (R-BIL-7): they follow actual top-ups; a refund waits for issued ones (R-BIL-5)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum

from tenants.services import Actor, record_operation

from ..errors import (
    InvalidAmount,
    InvoiceRefused,
)
from ..models import (
    Account,
    EntryKind,
    Invoice,
    InvoiceState,
    LedgerEntry,
)

# --- refunds and invoices (R-BIL-5, R-BIL-7) -----------------------------------------------------


def _open_invoices(account: Account) -> int:
    return Invoice.objects.filter(account=account, state=InvoiceState.ISSUED).count()


def issue_invoice(*, entry: LedgerEntry, number: str, amount: int, actor: Actor) -> Invoice:
    """R-BIL-7: invoices follow actual transactions: only against a top-up, never more than it."""
    if entry.kind != EntryKind.TOPUP:
        raise InvoiceRefused("Invoices are issued against top-ups only.")
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount("An invoice amount is a positive whole number of micro-units.")
    with transaction.atomic():
        Account.objects.select_for_update().get(pk=entry.account_id)
        invoiced = Invoice.objects.filter(entry=entry).aggregate(total=Sum("amount"))["total"] or 0
        if invoiced + amount > entry.amount:
            raise InvoiceRefused(details={"top_up": entry.amount, "already_invoiced": invoiced})
        if Invoice.objects.filter(number=number).exists():
            raise InvoiceRefused(f"Invoice number {number} is already used.", details={"number": number})
        invoice = Invoice.objects.create(account_id=entry.account_id, entry=entry, number=number, amount=amount)
        record_operation(
            actor=actor,
            action="billing.issue_invoice",
            tenant=entry.account.tenant,
            obj=invoice,
            after={"number": number, "amount": amount, "entry": entry.pk},
        )
    return invoice
