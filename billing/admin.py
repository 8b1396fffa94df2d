"""Finance admin: accounts (top-up, package, refund, penalty, forfeit, adjust, statement), the
read-only ledger, prices (7-day notice, R-BIL-4), packages, invoices, disputes, dormancy cases.

Every write calls a service (which records the operation, R-AUD-3); every view checks a custom
permission granted in billing/roles.py. Amounts are typed in CNY and converted exactly to
micro-units with Decimal (billing.money.cny_to_micro), never through float.
"""

import re
import uuid
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from smsplatform.errors import DomainError
from tenants.admin import admin_actor

from . import selectors, services
from .models import (
    Account,
    Currency,
    Dispute,
    DisputeState,
    DormancyCase,
    DormancyState,
    EntryKind,
    Hold,
    Invoice,
    InvoiceState,
    LedgerEntry,
    PackageGrant,
    PackageProduct,
    Plan,
    PlanAssignment,
    Price,
    Receivable,
    ReceivableState,
    Refund,
    RefundCause,
)
from .money import MAX_AMOUNT, InvalidAmount, cny_to_micro, format_money

DUPLICATE_WINDOW = timedelta(minutes=10)


AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


class CnyField(forms.CharField):
    """A CNY amount with up to six decimals → integer micro-units (exact, via Decimal).

    Strict: plain ASCII digits with an optional point and sign. Exponents ("1e3"), full-width or
    other non-ASCII digits, separators and amounts past the largest booking are form errors,
    never a silent reinterpretation or a database overflow (a 500)."""

    def __init__(self, *, allow_zero: bool = False, allow_negative: bool = False, **kwargs):
        self.allow_zero, self.allow_negative = allow_zero, allow_negative
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def clean(self, value):
        text = super().clean(value)
        if text in (None, ""):
            return None
        text = text.strip()
        if not AMOUNT_TEXT.fullmatch(text):
            if any(ch in "eE" for ch in text):
                raise ValidationError("Write the amount out in digits, without an exponent (1000, not 1e3).")
            if any(ch.isdigit() and not ch.isascii() for ch in text):
                raise ValidationError("Use the digits 0-9 (no full-width or other digits).")
            raise ValidationError("Not an amount: digits with an optional decimal point, e.g. 1000.50.")
        try:
            micro = cny_to_micro(text)
        except InvalidAmount as exc:
            raise ValidationError(str(exc)) from exc
        if abs(micro) > MAX_AMOUNT:
            raise ValidationError(f"The amount is beyond the largest booking ({format_money(MAX_AMOUNT)}).")
        if micro == 0 and not self.allow_zero:
            raise ValidationError("The amount cannot be zero.")
        if micro < 0 and not self.allow_negative:
            raise ValidationError("The amount must be positive.")
        return micro


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


class InvoiceForm(forms.Form):
    number = forms.CharField(max_length=50)
    amount = CnyField(label="Amount (CNY)")


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


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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

    @admin.display(description="amount")
    def amount_display(self, obj):
        return format_money(obj.amount, obj.account.currency)

    @admin.display(description="held change")
    def held_delta_display(self, obj):
        return format_money(obj.held_delta, obj.account.currency)

    @admin.display(description="balance after")
    def balance_after_display(self, obj):
        return format_money(obj.balance_after, obj.account.currency)

    @admin.display(description="held after")
    def held_after_display(self, obj):
        return format_money(obj.held_after, obj.account.currency)

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

    @admin.display(description="unit price", ordering="unit_price")
    def unit_price_display(self, obj):
        return format_money(obj.unit_price, obj.account.currency)

    @admin.display(description="cash held", ordering="amount")
    def amount_display(self, obj):
        return format_money(obj.amount, obj.account.currency)

    search_fields = ["reference", "carrier_message_id", "tenant__name"]


class PriceForm(forms.ModelForm):
    """R-BIL-4: a change must be announced at least 7 days before it takes effect."""

    unit_price_cny = CnyField(label="Unit price (per segment)", allow_zero=True, help_text="e.g. 0.035")
    currency = forms.ChoiceField(choices=Currency.choices, initial=Currency.CNY, required=False)

    class Meta:
        model = Price
        fields = ["plan", "message_type", "country", "carrier", "currency", "effective_from"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            services.check_price_notice(
                plan=data["plan"],
                message_type=data["message_type"],
                country=data["country"].upper(),
                carrier=data.get("carrier") or "",
                effective_from=data["effective_from"],
                now=timezone.now(),
            )
        except services.PriceNoticeTooShort as exc:
            raise ValidationError(f"{exc.message} (R-BIL-4)") from exc
        return data


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    """Prices are announced, never edited or deleted (history, R-BIL-4)."""

    form = PriceForm
    list_display = [
        "plan",
        "message_type",
        "country",
        "carrier",
        "unit_price_display",
        "effective_from",
        "announced_at",
        "announced_by",
    ]
    list_filter = ["plan", "message_type", "country"]

    @admin.display(description="unit price")
    def unit_price_display(self, obj):
        return format_money(obj.unit_price)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        price = services.announce_price(
            plan=data["plan"],
            message_type=data["message_type"],
            country=data["country"],
            carrier=data.get("carrier") or "",
            unit_price=data["unit_price_cny"],
            currency=data.get("currency") or Currency.CNY,
            effective_from=data["effective_from"],
            actor=admin_actor(request),
        )
        obj.pk, obj.unit_price, obj.announced_at, obj.announced_by = (
            price.pk,
            price.unit_price,
            price.announced_at,
            price.announced_by,
        )


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """R-BIL-4: which plan is the default changes what tenants pay, so it moves only through
    services.set_default_plan (the action below: 7 days' notice, tenants told); code and name
    edits are recorded (services.save_plan). Plans are never deleted (prices point at them)."""

    list_display = ["code", "name", "is_default", "default_from"]
    fields = ["code", "name", "is_default"]
    readonly_fields = ["is_default"]
    actions = ["make_default_in_7_days"]

    @admin.display(description="default plan (assignments)")
    def default_from(self, obj):
        rows = obj.assignments.filter(account__isnull=True).order_by("-effective_from")[:3]
        return ", ".join(f"from {timezone.localtime(a.effective_from):%Y-%m-%d %H:%M}" for a in rows) or "-"

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.save_plan(
            plan=obj, actor=admin_actor(request), code=form.cleaned_data["code"], name=form.cleaned_data["name"]
        )

    @admin.action(description="Make the default plan in 7 days (tenants are told)", permissions=["change"])
    def make_default_in_7_days(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, "Choose exactly one plan.")
            return
        when = timezone.now() + services.PRICE_NOTICE + timedelta(minutes=1)
        try:
            services.set_default_plan(plan=queryset.get(), actor=admin_actor(request), effective_from=when)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Default plan from {timezone.localtime(when):%Y-%m-%d %H:%M}.")


@admin.register(PackageProduct)
class PackageProductAdmin(admin.ModelAdmin):
    list_display = ["name", "segments", "price_display", "validity_days", "message_types", "active"]

    @admin.display(description="price")
    def price_display(self, obj):
        return format_money(obj.price)

    def has_delete_permission(self, request, obj=None):
        return False


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


class DisputeForm(forms.Form):
    decision = forms.ChoiceField(choices=[("resolve", "Resolve (compensate)"), ("reject", "Reject")])
    compensation = CnyField(
        label="Compensation (CNY)",
        allow_zero=True,
        required=False,
        help_text="at most 10% of that month's usage (R-BIL-8)",
    )
    resolution = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    list_display = ["account", "month", "state", "compensation", "created_at", "resolved_at", "decide_link"]
    list_filter = ["state"]

    @admin.display(description="")
    def decide_link(self, obj):
        if obj.state != DisputeState.OPEN:
            return ""
        return format_html('<a href="{}">decide</a>', reverse("admin:billing_dispute_decide", args=[obj.pk]))

    def get_urls(self):
        return [
            path("<int:pk>/decide/", self.admin_site.admin_view(self.decide_view), name="billing_dispute_decide")
        ] + super().get_urls()

    def decide_view(self, request, pk):
        if not request.user.has_perm("billing.resolve_dispute"):
            raise PermissionDenied
        dispute = get_object_or_404(Dispute.objects.select_related("account__tenant"), pk=pk)
        form = DisputeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["decision"] == "resolve":
                    services.resolve_dispute(
                        dispute=dispute,
                        compensation=data["compensation"] or 0,
                        resolution=data["resolution"],
                        actor=admin_actor(request),
                    )
                else:
                    services.reject_dispute(dispute=dispute, resolution=data["resolution"], actor=admin_actor(request))
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, "Dispute closed.")
                return redirect("admin:billing_dispute_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Decide: {dispute}",
            "form": form,
            "opts": self.model._meta,
            "submit": "Decide",
            "account": dispute.account,
            "balance": format_money(dispute.account.balance),
        }
        return TemplateResponse(request, "admin/billing/operation.html", context)


@admin.register(DormancyCase)
class DormancyCaseAdmin(ReadOnlyAdmin):
    """R-TEN-4: candidates found by the daily job; acted on only after the notice period."""

    list_display = [
        "tenant",
        "kind",
        "state",
        "last_use_at",
        "found_at",
        "notified_at",
        "act_after",
        "acted_at",
        "outcome",
    ]
    list_filter = ["kind", "state"]
    list_select_related = ["tenant"]
    actions = ["cancel_cases"]

    @admin.action(description="Cancel selected open cases", permissions=["manage"])
    def cancel_cases(self, request, queryset):
        for case in queryset.filter(state=DormancyState.NOTIFIED):
            services.cancel_dormancy_case(case=case, actor=admin_actor(request), reason="cancelled by operator")
        messages.success(request, "Cases cancelled.")

    def has_manage_permission(self, request):
        return request.user.has_perm("billing.manage_dormancy")


@admin.register(Receivable)
class ReceivableAdmin(ReadOnlyAdmin):
    """R-CMP-6: penalties beyond the balance, collected from the next top-ups."""

    list_display = ["account", "amount_display", "collected_display", "state", "reason", "created_at", "settled_at"]
    list_filter = ["state"]
    list_select_related = ["account__tenant"]

    @admin.display(description="amount")
    def amount_display(self, obj):
        return format_money(obj.amount, obj.account.currency)

    @admin.display(description="collected")
    def collected_display(self, obj):
        return format_money(obj.collected, obj.account.currency)


@admin.register(PlanAssignment)
class PlanAssignmentAdmin(ReadOnlyAdmin):
    """R-BIL-4: which plan each tenant (or the default) pays by, from when; made by services only."""

    list_display = ["account", "plan", "effective_from", "announced_at", "announced_by"]
    list_select_related = ["account__tenant", "plan"]
