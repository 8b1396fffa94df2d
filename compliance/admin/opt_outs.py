"""Opt-outs and blocks (R-CMP-4): the platform block list with the per-tenant opt-out page, the reply
keywords recognised as opt-outs, and the replies an operator decides on.

Every write calls a service (which records the operation, R-AUD-3)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django_tenants.utils import tenant_context
from import_export.admin import ImportExportModelAdmin

from smsplatform.admin_bases import DeleteThroughServiceMixin
from smsplatform.errors import DomainError
from smsplatform.numbers import normalise_lenient as normalise_number
from tenants.admin_support import admin_actor
from tenants.models import Tenant, TenantKind

from .. import services
from ..models import (
    GlobalBlock,
    OptOut,
    OptOutKeyword,
    OptOutRemoval,
    OptOutReview,
    OptOutSource,
    ReplyReviewStatus,
)
from ..resources import GlobalBlockResource

# --- block list and tenant opt-outs -----------------------------------------------------------


class OptOutForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.exclude(kind=TenantKind.PLATFORM).order_by("name"))
    number = forms.CharField(max_length=32)
    operation = forms.ChoiceField(
        required=False, choices=[("lookup", "Look up"), ("add", "Opt out"), ("remove", "Lift the opt-out")]
    )
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required to lift an opt-out (e.g. the recipient asked by phone).",
    )

    def clean_number(self):
        try:
            return normalise_number(self.cleaned_data["number"])
        except ValueError as exc:
            raise forms.ValidationError("Not a phone number.") from exc


@admin.register(GlobalBlock)
class GlobalBlockAdmin(ImportExportModelAdmin):
    """R-CMP-4 platform-wide block list."""

    resource_classes = [GlobalBlockResource]
    change_list_template = "admin/compliance/globalblock/change_list.html"
    list_display = ["number", "reason", "source", "created_by", "created_at"]
    search_fields = ["number", "reason"]
    list_filter = ["source"]
    fields = ["number", "reason", "source"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        block = services.block_number(
            number=obj.number, reason=obj.reason, source=obj.source or "operator", actor=admin_actor(request)
        )
        obj.pk = block.pk

    def delete_model(self, request, obj):
        services.unblock_number(number=obj.number, actor=admin_actor(request), reason="removed in admin")

    def get_urls(self):
        return [
            path("opt-outs/", self.admin_site.admin_view(self.opt_outs_view), name="compliance_globalblock_optouts"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "opt_outs_url": reverse("admin:compliance_globalblock_optouts")}
        return super().changelist_view(request, extra_context)

    def opt_outs_view(self, request):
        """A tenant's opt-out for one number: look up, add, or lift it with a reason (R-CMP-4).

        Opt-outs live in the tenant's schema; this page enters it for the one lookup."""
        if not request.user.has_perm("compliance.manage_opt_outs"):
            raise PermissionDenied
        form = OptOutForm(request.POST or request.GET or None)
        found = removals = None
        if form.is_bound and form.is_valid():
            tenant, number = form.cleaned_data["tenant"], form.cleaned_data["number"]
            operation = form.cleaned_data.get("operation") or "lookup"
            try:
                if operation == "remove":
                    services.remove_opt_out(
                        tenant=tenant,
                        number=number,
                        actor=admin_actor(request),
                        reason=form.cleaned_data.get("reason") or "",
                    )
                    messages.success(request, f"Opt-out of {number} lifted for {tenant.name} (recorded).")
                elif operation == "add":
                    services.add_opt_out(
                        tenant=tenant, number=number, actor=admin_actor(request), source=OptOutSource.OPERATOR
                    )
                    messages.success(request, f"{number} opted out of {tenant.name}.")
            except DomainError as exc:
                messages.error(request, exc.message)
            with tenant_context(tenant):
                found = OptOut.objects.filter(number=number).first()
                removals = list(OptOutRemoval.objects.filter(number=number)[:20])
        context = {
            **self.admin_site.each_context(request),
            "title": "Tenant opt-outs",
            "form": form,
            "found": found,
            "removals": removals,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/compliance/opt_outs.html", context)

    def delete_queryset(self, request, queryset):
        for block in queryset:
            self.delete_model(request, block)


# --- reply keywords and replies to review (issue 11) ------------------------------------------


@admin.register(OptOutKeyword)
class OptOutKeywordAdmin(DeleteThroughServiceMixin, admin.ModelAdmin):
    """R-CMP-4: the tokens recognised in replies (matched as words under the one normaliser)."""

    list_display = ["word", "action", "alone_only", "enabled", "note", "updated_at"]
    list_filter = ["action", "alone_only", "enabled"]
    search_fields = ["word", "match_key"]
    fields = ["word", "action", "alone_only", "enabled", "note"]

    def save_model(self, request, obj, form, change):
        try:
            services.save_opt_out_keyword(keyword=obj, actor=admin_actor(request))
        except DomainError as exc:
            messages.error(request, exc.message)

    def delete_rows(self, request, ids):
        services.delete_opt_out_keywords(keyword_ids=ids, actor=admin_actor(request))


@admin.register(OptOutReview)
class OptOutReviewAdmin(admin.ModelAdmin):
    """R-CMP-4: replies that may be opt-outs; an operator opts the number out or dismisses them."""

    list_display = ["created_at", "tenant", "number", "text", "why", "status", "decided_by"]
    list_filter = ["status"]
    search_fields = ["number", "text"]
    readonly_fields = ["tenant", "number", "text", "tokens", "why", "status", "decided_by", "decided_at", "reason"]
    actions = ["opt_out_selected", "dismiss_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_permission(self, request):
        return request.user.has_perm("compliance.manage_opt_outs")

    def _decide(self, request, queryset, *, opt_out: bool):
        done = 0
        for review in queryset.filter(status=ReplyReviewStatus.PENDING):
            try:
                services.decide_opt_out_review(
                    review=review,
                    opt_out=opt_out,
                    actor=admin_actor(request),
                    reason="" if opt_out else "operator: not an opt-out",
                )
            except DomainError as exc:
                messages.error(request, f"{review}: {exc.message}")
                continue
            done += 1
        messages.success(request, f"{done} repl{'y' if done == 1 else 'ies'} decided.")

    @admin.action(description="Opt these numbers out", permissions=["manage"])
    def opt_out_selected(self, request, queryset):
        self._decide(request, queryset, opt_out=True)

    @admin.action(description="Dismiss: not an opt-out", permissions=["manage"])
    def dismiss_selected(self, request, queryset):
        self._decide(request, queryset, opt_out=False)
