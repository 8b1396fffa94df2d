"""What tenants pay: prices announced with 7 days' notice, plans and the default plan, plan assignments
(R-BIL-4), and the packages on sale."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone

from smsplatform.admin_bases import ReadOnlyAdmin
from smsplatform.errors import DomainError
from tenants.admin_support import admin_actor

from .. import services
from ..models import (
    Currency,
    PackageProduct,
    Plan,
    PlanAssignment,
    Price,
)
from ..money import format_money
from .money import CnyField


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


@admin.register(PlanAssignment)
class PlanAssignmentAdmin(ReadOnlyAdmin):
    """R-BIL-4: which plan each tenant (or the default) pays by, from when; made by services only."""

    list_display = ["account", "plan", "effective_from", "announced_at", "announced_by"]
    list_select_related = ["account__tenant", "plan"]


@admin.register(PackageProduct)
class PackageProductAdmin(admin.ModelAdmin):
    list_display = ["name", "segments", "price_display", "validity_days", "message_types", "active"]

    @admin.display(description="price")
    def price_display(self, obj):
        return format_money(obj.price)

    def has_delete_permission(self, request, obj=None):
        return False
