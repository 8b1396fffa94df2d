"""Per-tenant settings and limits: compliance settings and rectification (R-CMP-6/9), volume counters
and per-recipient frequency limits (R-CMP-8).

Every write calls a service (which records the operation, R-AUD-3)."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from smsplatform.admin_bases import DeleteThroughServiceMixin, ReadOnlyAdmin
from smsplatform.errors import DomainError
from tenants.admin_support import admin_actor

from .. import frequency, services
from ..models import (
    ComplianceSettings,
    FrequencyLimit,
    VolumeCounter,
)
from ..services.options import SETTINGS_FIELDS

# --- per-tenant settings ---------------------------------------------------------------------


class ComplianceSettingsForm(forms.ModelForm):
    enabled_countries = forms.CharField(required=False, help_text="ISO country codes, comma separated (R-CMP-9).")

    class Meta:
        model = ComplianceSettings
        fields = ["tenant", *SETTINGS_FIELDS]  # what the service accepts as changes

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["enabled_countries"] = ", ".join(self.instance.enabled_countries or [])

    def clean_enabled_countries(self):
        raw = self.cleaned_data.get("enabled_countries") or ""
        return [part.strip().upper() for part in raw.split(",") if part.strip()]


@admin.register(ComplianceSettings)
class ComplianceSettingsAdmin(admin.ModelAdmin):
    form = ComplianceSettingsForm
    list_display = [
        "tenant",
        "consent_policy",
        "per_minute_cap",
        "per_day_cap",
        "spike_multiple",
        "countries",
        "rectification",
    ]
    readonly_fields = ["rectification_done_at", "rectification_done_by", "rectification_escalated_at"]
    actions = ["mark_rectification_done"]

    @admin.display(description="Rectification deadline", ordering="rectification_deadline")
    def rectification(self, obj):
        if obj.rectification_deadline is None:
            return ""
        shown = timezone.localtime(obj.rectification_deadline).strftime("%Y-%m-%d %H:%M")
        if obj.rectification_done_at is not None:
            return f"DONE (deadline {shown})"
        if obj.rectification_escalated_at is not None:
            return format_html('<strong style="color:#ba2121">ESCALATED {}</strong>', shown)
        if obj.rectification_deadline < timezone.now():
            return format_html('<strong style="color:#ba2121">PASSED {}</strong>', shown)
        return shown

    @admin.action(description="Mark rectification done", permissions=["enforce"])
    def mark_rectification_done(self, request, queryset):
        """R-CMP-6: recorded per tenant (rectification.done); stops the overdue escalation."""
        done = 0
        for row in queryset.select_related("tenant"):
            try:
                services.mark_rectification_done(
                    tenant=row.tenant, actor=admin_actor(request), reason="marked done in admin"
                )
            except DomainError as exc:
                messages.warning(request, f"{row.tenant}: {exc.message}")
            else:
                done += 1
        if done:
            messages.success(request, f"Marked {done} rectification(s) done.")

    def has_enforce_permission(self, request):
        return request.user.has_perm("compliance.enforce")

    @admin.display(description="International countries")
    def countries(self, obj):
        return ", ".join(obj.enabled_countries or [])

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        changes = {field: form.cleaned_data[field] for field in form.changed_data if field != "tenant"}
        row = services.update_compliance_settings(
            tenant=form.cleaned_data["tenant"], changes=changes, actor=admin_actor(request), reason="changed in admin"
        )
        obj.pk = row.pk


# --- volume counters and frequency limits (R-CMP-8) -------------------------------------------


@admin.register(VolumeCounter)
class VolumeCounterAdmin(ReadOnlyAdmin):
    """R-CMP-8: what each tenant sent, per minute / hour / day (read-only)."""

    list_display = ["tenant", "granularity", "bucket_start", "count"]
    list_filter = ["granularity"]
    search_fields = ["tenant__name"]
    ordering = ["-bucket_start"]
    date_hierarchy = "bucket_start"


@admin.register(FrequencyLimit)
class FrequencyLimitAdmin(DeleteThroughServiceMixin, admin.ModelAdmin):
    """R-CMP-8 per-recipient repeat limits: platform defaults (no tenant) and per-tenant overrides.
    Changes go through compliance.frequency (operation trail)."""

    list_display = ["message_type", "tenant", "per_minute", "per_hour", "per_day", "updated_at"]
    list_filter = ["message_type", ("tenant", admin.EmptyFieldListFilter)]
    search_fields = ["tenant__name"]
    autocomplete_fields = ["tenant"]
    fields = ["tenant", "message_type", "per_minute", "per_hour", "per_day"]

    def save_model(self, request, obj, form, change):
        frequency.save_frequency_limit(limit=obj, actor=admin_actor(request))

    def delete_rows(self, request, ids):
        frequency.delete_frequency_limits(limit_ids=ids, actor=admin_actor(request))
