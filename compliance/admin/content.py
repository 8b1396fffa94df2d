"""Content rules operators maintain: banned rules (R-CMP-3, import/export), protected brands (R-CMP-1),
link domains (R-CMP-2), per-country rules and registered senders (R-CMP-9, import/export).

Every write calls a service (which records the operation, R-AUD-3)."""

from django import forms
from django.contrib import admin, messages
from import_export.admin import ImportExportModelAdmin

from smsplatform.admin_bases import DeleteThroughServiceMixin, ReadOnlyInline
from smsplatform.errors import DomainError
from tenants.admin_support import admin_actor

from .. import services
from ..models import (
    COUNTRY_RULE_FIELDS,
    BannedRule,
    CountryRule,
    LinkDomain,
    ProtectedBrand,
    RegisteredSender,
)
from ..resources import BannedRuleResource, CountryRuleResource
from ..scanner import validate_pattern

# --- banned rules ----------------------------------------------------------------------------


class BannedRuleForm(forms.ModelForm):
    class Meta:
        model = BannedRule
        fields = ["kind", "pattern", "max_gap", "category", "action", "enabled", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["max_gap"].required = False  # only near phrases use it

    def clean(self):
        data = super().clean()
        if data.get("max_gap") is None:
            data["max_gap"] = 6
        problem = validate_pattern(
            kind=data.get("kind", ""), pattern=data.get("pattern", ""), max_gap=data.get("max_gap") or 0
        )
        if problem:
            raise forms.ValidationError(problem)
        return data


@admin.register(BannedRule)
class BannedRuleAdmin(DeleteThroughServiceMixin, ImportExportModelAdmin):
    """R-CMP-3 rules; import/export with django-import-export (rows matched on kind + pattern)."""

    resource_classes = [BannedRuleResource]
    form = BannedRuleForm
    list_display = ["pattern", "kind", "category", "action", "enabled", "updated_at"]
    list_filter = ["category", "kind", "action", "enabled"]
    list_editable = []
    search_fields = ["pattern", "note"]
    actions = ["enable_rules", "disable_rules"]

    def save_model(self, request, obj, form, change):
        services.save_banned_rule(rule=obj, actor=admin_actor(request))

    def delete_rows(self, request, ids):
        services.delete_banned_rules(rule_ids=ids, actor=admin_actor(request))

    @admin.action(description="Enable selected rules", permissions=["change"])
    def enable_rules(self, request, queryset):
        count = services.set_rules_enabled(
            rule_ids=list(queryset.values_list("pk", flat=True)), enabled=True, actor=admin_actor(request)
        )
        messages.success(request, f"Enabled {count} rule(s).")

    @admin.action(description="Disable selected rules", permissions=["change"])
    def disable_rules(self, request, queryset):
        count = services.set_rules_enabled(
            rule_ids=list(queryset.values_list("pk", flat=True)), enabled=False, actor=admin_actor(request)
        )
        messages.success(request, f"Disabled {count} rule(s).")


# --- R-CMP-9 per-country rules ---------------------------------------------------------------


class CountryRuleForm(forms.ModelForm):
    class Meta:
        model = CountryRule
        fields = list(COUNTRY_RULE_FIELDS)

    def clean_country(self):
        return (self.cleaned_data.get("country") or "").strip().upper()

    def clean(self):
        data = super().clean()
        if not self.errors:
            problem = services.country_rule_problem(CountryRule(**{f: data.get(f) for f in self.Meta.fields}))
            if problem:
                raise forms.ValidationError(problem)
        return data


class RegisteredSenderInline(ReadOnlyInline):
    model = RegisteredSender
    fields = ["tenant", "sender_id", "note", "created_by", "created_at"]
    verbose_name_plural = "registered senders (add them under Compliance › Registered senders)"


@admin.register(CountryRule)
class CountryRuleAdmin(DeleteThroughServiceMixin, ImportExportModelAdmin):
    """R-CMP-9 destination-country rules; import/export (rows matched on the country code)."""

    resource_classes = [CountryRuleResource]
    form = CountryRuleForm
    list_display = ["country", "name", "enabled", "sender_rule", "content_rules", "updated_at"]
    list_filter = ["enabled", "sender_rule"]
    search_fields = ["country", "name", "notes"]
    inlines = [RegisteredSenderInline]

    @admin.display(description="Content rules")
    def content_rules(self, obj):
        parts = []
        if obj.opt_out_text_required:
            parts.append("opt-out text")
        if obj.quiet_hours_start is not None:
            parts.append(f"quiet {obj.quiet_hours_start:%H:%M}-{obj.quiet_hours_end:%H:%M} {obj.timezone}")
        if obj.max_segments:
            parts.append(f"≤ {obj.max_segments} segments")
        return ", ".join(parts)

    def save_model(self, request, obj, form, change):
        services.save_country_rule(rule=obj, actor=admin_actor(request))

    def delete_rows(self, request, ids):
        services.delete_country_rules(rule_ids=ids, actor=admin_actor(request))


@admin.register(RegisteredSender)
class RegisteredSenderAdmin(admin.ModelAdmin):
    """Sender IDs tenants registered for `registered` countries (R-CMP-9): the signature text."""

    list_display = ["sender_id", "rule", "tenant", "note", "created_by", "created_at"]
    list_filter = ["rule"]
    search_fields = ["sender_id", "tenant__name"]
    fields = ["rule", "tenant", "sender_id", "note"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        sender = services.register_sender(
            rule=obj.rule, tenant=obj.tenant, sender_id=obj.sender_id, note=obj.note, actor=admin_actor(request)
        )
        obj.pk = sender.pk

    def delete_model(self, request, obj):
        services.unregister_sender(sender=obj, actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for sender in queryset.select_related("rule", "tenant"):
            services.unregister_sender(sender=sender, actor=admin_actor(request))


# --- protected brands and link domains (issue 11) ---------------------------------------------


@admin.register(ProtectedBrand)
class ProtectedBrandAdmin(DeleteThroughServiceMixin, admin.ModelAdmin):
    """R-CMP-1: brands only their owner may sign with; a signature containing one is flagged."""

    list_display = ["name", "kind", "enabled", "match_key", "note"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "match_key"]
    fields = ["name", "kind", "enabled", "note"]

    def save_model(self, request, obj, form, change):
        try:
            services.save_protected_brand(brand=obj, actor=admin_actor(request))
        except DomainError as exc:
            messages.error(request, exc.message)

    def delete_rows(self, request, ids):
        services.delete_protected_brands(brand_ids=ids, actor=admin_actor(request))


@admin.register(LinkDomain)
class LinkDomainAdmin(admin.ModelAdmin):
    """R-CMP-2: the domains a tenant's url parameters may point to."""

    list_display = ["domain", "tenant", "note", "created_by", "created_at"]
    search_fields = ["domain", "tenant__name"]
    fields = ["tenant", "domain", "note"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        try:
            services.register_link_domain(
                tenant=obj.tenant, domain=obj.domain, note=obj.note, actor=admin_actor(request)
            )
        except DomainError as exc:
            messages.error(request, exc.message)

    def delete_model(self, request, obj):
        services.remove_link_domain(row=obj, actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for row in queryset:
            services.remove_link_domain(row=row, actor=admin_actor(request))
