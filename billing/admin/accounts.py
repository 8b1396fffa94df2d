"""Accounts and their operations (top-up, package, refund, penalty, forfeit, adjust) and the monthly
statement. A booking form carries an idempotency key, and an identical booking within a few minutes
asks for confirmation (a double submit books once)."""

import uuid
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from smsplatform.admin_bases import ReadOnlyAdmin
from smsplatform.errors import DomainError
from tenants.admin_support import admin_actor

from .. import selectors, services
from ..models import (
    Account,
    EntryKind,
    LedgerEntry,
    PackageProduct,
    ReceivableState,
    Refund,
    RefundCause,
)
from ..money import format_money
from .money import CnyField

DUPLICATE_WINDOW = timedelta(minutes=10)


class KeyedForm(forms.Form):
    """Carries an idempotency key made when the form is shown: a double submit books once (the
    replay says so). Back + a fresh form gets a new key, so the view also asks for an explicit
    confirmation when an identical booking was made in the last few minutes."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput)
    confirm_duplicate = forms.BooleanField(
        required=False,
        label="Book it again",
        help_text="Only needed when an identical booking was made in the last few minutes.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["idempotency_key"].initial = f"admin-{uuid.uuid4().hex}"


class TopupForm(KeyedForm):
    amount = CnyField(label="Amount (CNY)", help_text="e.g. 1000.50 (up to 6 decimals)")
    reference = forms.CharField(max_length=200, required=False, help_text="bank transfer / receipt number")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class PackageForm(KeyedForm):
    product = forms.ModelChoiceField(queryset=PackageProduct.objects.filter(active=True))
    paid = forms.BooleanField(
        required=False, initial=True, help_text="Paid now (booked as a top-up); unticked: taken from the cash balance."
    )


class RefundForm(KeyedForm):
    cause = forms.ChoiceField(
        choices=RefundCause.choices,
        help_text="R-BIL-5: refunds only when the platform ends the service or is in breach.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class PenaltyForm(KeyedForm):
    amount = CnyField(label="Amount (CNY)", help_text="R-CMP-6: 1000 per illegal message, 50000 per channel cut")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class ForfeitForm(KeyedForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="R-CMP-6 / R-BIL-3")
    confirm = forms.BooleanField(label="Forfeit the whole balance and every package credit")


class AdjustForm(KeyedForm):
    amount = CnyField(label="Amount (CNY, signed)", allow_negative=True)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class StatementForm(forms.Form):
    month = forms.RegexField(regex=r"^\d{4}-(0[1-9]|1[0-2])$", help_text="YYYY-MM")


ACCOUNT_OPERATIONS = {
    # url name: (title, form, permission, service call)
    "topup": ("Book a top-up", TopupForm, "billing.topup_account"),
    "package": ("Sell a package", PackageForm, "billing.topup_account"),
    "refund": ("Refund the remaining balance", RefundForm, "billing.refund_account"),
    "penalty": ("Book a penalty", PenaltyForm, "billing.penalize_account"),
    "forfeit": ("Forfeit balance and packages", ForfeitForm, "billing.forfeit_account"),
    "adjust": ("Book an adjustment", AdjustForm, "billing.adjust_account"),
}


def _run(operation: str, *, tenant, data: dict, actor) -> str:
    key = data["idempotency_key"]
    if operation == "topup":
        entry = services.topup(
            tenant=tenant,
            amount=data["amount"],
            actor=actor,
            idempotency_key=key,
            reference=data["reference"],
            reason=data["reason"],
        )
        return f"Top-up of {format_money(entry.amount)} booked; balance {format_money(entry.balance_after)}."
    if operation == "package":
        grant = services.buy_package(
            tenant=tenant, product=data["product"], paid=data["paid"], actor=actor, idempotency_key=key
        )
        return f"Package {grant.product.name} booked, valid until {grant.expires_at:%Y-%m-%d}."
    if operation == "refund":
        refund = services.request_refund(
            tenant=tenant, cause=data["cause"], reason=data["reason"], actor=actor, idempotency_key=key
        )
        if refund.state == "completed":
            return f"Refunded {format_money(refund.amount)}."
        return "The refund waits until the issued invoices are returned (R-BIL-5)."
    if operation == "penalty":
        entry = services.penalty(
            tenant=tenant, amount=data["amount"], reason=data["reason"], actor=actor, idempotency_key=key
        )
        return (
            f"Penalty charged {format_money(-entry.amount)}; outstanding {format_money(entry.details['outstanding'])}."
        )
    if operation == "forfeit":
        entry = services.forfeit(tenant=tenant, reason=data["reason"], actor=actor, idempotency_key=key)
        return f"Forfeited {format_money(-entry.amount)} and {entry.details['package_segments']} package segments."
    if operation == "adjust":
        entry = services.adjust(
            tenant=tenant, amount=data["amount"], reason=data["reason"], actor=actor, idempotency_key=key
        )
        return f"Adjustment booked; balance {format_money(entry.balance_after)}."
    raise PermissionDenied


def _already_booked(key: str) -> bool:
    return (
        LedgerEntry.objects.filter(idempotency_key=key).exists() or Refund.objects.filter(idempotency_key=key).exists()
    )


def _recent_identical(operation: str, *, account: Account, data: dict):
    """When an identical booking on this account was made within DUPLICATE_WINDOW (its time), else None."""
    since = timezone.now() - DUPLICATE_WINDOW
    entries = LedgerEntry.objects.filter(account=account, created_at__gte=since)
    if operation == "topup":
        entries = entries.filter(kind=EntryKind.TOPUP, amount=data["amount"])
    elif operation == "adjust":
        entries = entries.filter(kind=EntryKind.ADJUST, amount=data["amount"])
    elif operation == "penalty":
        entries = entries.filter(kind=EntryKind.PENALTY, details__assessed=data["amount"])
    elif operation == "package":
        entries = entries.filter(kind=EntryKind.PACKAGE, details__product=data["product"].pk)
    elif operation == "forfeit":
        entries = entries.filter(kind=EntryKind.FORFEIT)
    elif operation == "refund":
        refund = Refund.objects.filter(account=account, created_at__gte=since).order_by("-created_at").first()
        return refund.created_at if refund else None
    else:
        return None
    entry = entries.order_by("-created_at").first()
    return entry.created_at if entry else None


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "balance_display", "held_display", "plan", "threshold_display", "low_balance_alerted"]
    list_select_related = ["tenant", "plan"]
    search_fields = ["tenant__name", "tenant__schema_name", "tenant__licence_number"]
    list_filter = ["plan", "low_balance_alerted"]
    readonly_fields = [
        "tenant",
        "currency",
        "balance_display",
        "held_display",
        "plan",
        "threshold_display",
        "receivables_display",
        "alert_webhook_url",
        "service_expires_at",
        "created_at",
        "packages",
        "operations",
    ]
    fields = readonly_fields

    @admin.display(description="balance")
    def balance_display(self, obj):
        return format_money(obj.balance, obj.currency)

    @admin.display(description="held")
    def held_display(self, obj):
        return format_money(obj.held, obj.currency)

    @admin.display(description="low-balance threshold")
    def threshold_display(self, obj):
        return "-" if obj.low_balance_threshold is None else format_money(obj.low_balance_threshold, obj.currency)

    @admin.display(description="owed beyond the balance")
    def receivables_display(self, obj):
        owed = sum(r.outstanding for r in obj.receivables.filter(state=ReceivableState.OPEN))
        return format_money(owed, obj.currency) if owed else "-"

    @admin.display(description="packages")
    def packages(self, obj):
        grants = obj.packages.filter(state="active").select_related("product")
        return (
            format_html_join(
                mark_safe("<br>"),  # noqa: S308 - a constant tag
                "{}: {} / {} until {}",
                ((g.product.name, g.segments_remaining, g.segments_total, f"{g.expires_at:%Y-%m-%d}") for g in grants),
            )
            or "-"
        )

    @admin.display(description="Operations")
    def operations(self, obj):
        links = [
            (reverse(f"admin:billing_account_{name}", args=[obj.pk]), title)
            for name, (title, _, _) in ACCOUNT_OPERATIONS.items()
        ]
        links.append((reverse("admin:billing_account_statement", args=[obj.pk]), "Statement"))
        return format_html_join(" ", '<a class="button" href="{}">{}</a>', links)

    def get_urls(self):
        own = [
            path(
                f"<int:pk>/{name}/",
                self.admin_site.admin_view(self._operation_view(name)),
                name=f"billing_account_{name}",
            )
            for name in ACCOUNT_OPERATIONS
        ]
        own.append(
            path(
                "<int:pk>/statement/", self.admin_site.admin_view(self.statement_view), name="billing_account_statement"
            )
        )
        return own + super().get_urls()

    def _operation_view(self, name: str):
        title, form_class, permission = ACCOUNT_OPERATIONS[name]

        def view(request, pk):
            if not request.user.has_perm(permission):
                raise PermissionDenied
            account = get_object_or_404(Account.objects.select_related("tenant"), pk=pk)
            form = form_class(request.POST or None)
            if request.method == "POST" and form.is_valid():
                data = form.cleaned_data
                if _already_booked(data["idempotency_key"]):
                    # the same form again (double submit, Back + resubmit): the service would
                    # replay; say so plainly instead of a second "booked"
                    messages.warning(
                        request, "Already booked: this form was submitted before, nothing was booked twice."
                    )
                    return redirect("admin:billing_account_change", pk)
                duplicate = _recent_identical(name, account=account, data=data)
                if duplicate and not data.get("confirm_duplicate"):
                    form.add_error(
                        "confirm_duplicate",
                        f"An identical booking was made at {timezone.localtime(duplicate):%H:%M:%S}. "
                        "Tick “Book it again” to book a second one.",
                    )
                else:
                    try:
                        message = _run(name, tenant=account.tenant, data=data, actor=admin_actor(request))
                    except DomainError as exc:
                        messages.error(request, exc.message)
                    else:
                        messages.success(request, message)
                        return redirect("admin:billing_account_change", pk)
            context = {
                **self.admin_site.each_context(request),
                "title": f"{title}: {account.tenant.name}",
                "form": form,
                "account": account,
                "opts": self.model._meta,
                "balance": format_money(account.balance, account.currency),
                "submit": title,
            }
            return TemplateResponse(request, "admin/billing/operation.html", context)

        return view

    def statement_view(self, request, pk):
        if not request.user.has_perm("billing.view_statement"):
            raise PermissionDenied
        account = get_object_or_404(Account.objects.select_related("tenant"), pk=pk)
        form = StatementForm(request.GET or {"month": timezone.localtime().strftime("%Y-%m")})
        statement = None
        if form.is_valid():
            year, month = (int(x) for x in form.cleaned_data["month"].split("-"))
            statement = selectors.statement_for(tenant=account.tenant, year=year, month=month)
            statement = [
                (
                    k.replace("_", " "),
                    format_money(v) if isinstance(v, int) and "segments" not in k and "messages" not in k else v,
                )
                for k, v in statement.items()
            ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Statement: {account.tenant.name}",
            "form": form,
            "statement": statement,
            "account": account,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/statement.html", context)
