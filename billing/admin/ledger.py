"""What was booked: the append-only ledger with invoices issued from top-ups (R-BIL-9, R-BIL-7), holds,
package grants, invoices, refunds and receivables. Read-only; actions call services."""

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from smsplatform.admin_bases import ReadOnlyAdmin
from smsplatform.errors import DomainError
from tenants.admin_support import admin_actor

from .. import services
from ..models import (
    EntryKind,
    Hold,
    Invoice,
    InvoiceState,
    LedgerEntry,
    PackageGrant,
    Receivable,
    Refund,
)
from ..money import format_money
from .money import CnyField, account_money


class InvoiceForm(forms.Form):
    number = forms.CharField(max_length=50)
    amount = CnyField(label="Amount (CNY)")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    """Append-only (R-BIL-9): browsable, never edited."""

    # The tenant, not the Account's __str__ (which carries today's balance onto every row); every
    # amount in the account's currency with its unit (issue 14).
    list_display = [
        "created_at",
        "tenant_name",
        "kind",
        "amount_display",
        "held_delta_display",
        "balance_after_display",
        "held_after_display",
        "reference_display",
        "actor_label",
        "invoice_link",
    ]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["account__tenant"]
    search_fields = ["account__tenant__name", "idempotency_key", "reference", "actor_label"]
    date_hierarchy = "created_at"

    @admin.display(description="tenant", ordering="account__tenant__name")
    def tenant_name(self, obj):
        return obj.account.tenant.name

    amount_display = account_money("amount", "amount")
    held_delta_display = account_money("held_delta", "held change")
    balance_after_display = account_money("balance_after", "balance after")
    held_after_display = account_money("held_after", "held after")

    @admin.display(description="reference")
    def reference_display(self, obj):
        # settlements are booked as "<n> holds"; one of them reads "1 hold"
        return re.sub(r"^1 holds$", "1 hold", obj.reference)

    @admin.display(description="invoice")
    def invoice_link(self, obj):
        if obj.kind != EntryKind.TOPUP:
            return ""
        return format_html(
            '<a href="{}">issue invoice</a>', reverse("admin:billing_ledgerentry_invoice", args=[obj.pk])
        )

    def get_urls(self):
        return [
            path("<int:pk>/invoice/", self.admin_site.admin_view(self.invoice_view), name="billing_ledgerentry_invoice")
        ] + super().get_urls()

    def invoice_view(self, request, pk):
        """R-BIL-7: invoices follow actual top-ups."""
        if not request.user.has_perm("billing.issue_invoice"):
            raise PermissionDenied
        entry = get_object_or_404(LedgerEntry.objects.select_related("account__tenant"), pk=pk)
        form = InvoiceForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                invoice = services.issue_invoice(
                    entry=entry,
                    number=form.cleaned_data["number"],
                    amount=form.cleaned_data["amount"],
                    actor=admin_actor(request),
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"Invoice {invoice.number} issued.")
                return redirect("admin:billing_invoice_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Issue an invoice for {entry}",
            "form": form,
            "opts": self.model._meta,
            "submit": "Issue invoice",
            "account": entry.account,
            "balance": format_money(entry.amount),
        }
        return TemplateResponse(request, "admin/billing/operation.html", context)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "reference",
        "segments",
        "package_segments",
        "unit_price_display",
        "amount_display",
        "state",
        "carrier_message_id",
        "submitted_at",
        "settled_at",
    ]
    list_filter = ["state"]
    list_select_related = ["tenant", "account"]
    search_fields = ["reference", "carrier_message_id", "tenant__name"]
    unit_price_display = account_money("unit_price", "unit price", ordering="unit_price")
    amount_display = account_money("amount", "cash held", ordering="amount")


@admin.register(PackageGrant)
class PackageGrantAdmin(ReadOnlyAdmin):
    list_display = ["account", "product", "segments_remaining", "segments_total", "expires_at", "last_used_at", "state"]
    list_filter = ["state"]
    list_select_related = ["account__tenant", "product"]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "account", "amount_display", "state", "issued_at", "returned_at"]
    list_filter = ["state"]
    actions = ["mark_returned"]

    @admin.display(description="amount")
    def amount_display(self, obj):
        return format_money(obj.amount)

    @admin.action(description="Mark selected invoices returned", permissions=["issue"])
    def mark_returned(self, request, queryset):
        for invoice in queryset.filter(state=InvoiceState.ISSUED):
            services.return_invoice(invoice=invoice, actor=admin_actor(request))
        messages.success(request, "Invoices marked returned; waiting refunds completed where no invoice is left.")

    def has_issue_permission(self, request):
        return request.user.has_perm("billing.issue_invoice")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["account", "cause", "state", "amount", "requested_by", "created_at", "completed_at"]
    list_filter = ["state", "cause"]


@admin.register(Receivable)
class ReceivableAdmin(ReadOnlyAdmin):
    """R-CMP-6: penalties beyond the balance, collected from the next top-ups."""

    list_display = ["account", "amount_display", "collected_display", "state", "reason", "created_at", "settled_at"]
    list_filter = ["state"]
    list_select_related = ["account__tenant"]

    amount_display = account_money("amount", "amount")
    collected_display = account_money("collected", "collected")
