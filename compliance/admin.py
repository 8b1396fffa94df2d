"""Operator admin for compliance: review queues (R-CMP-1/2), banned rules and the block list (R-CMP-3/4,
import/export), violations and enforcement (R-CMP-6), complaints (R-CMP-7), per-tenant settings,
per-country rules and registered senders (R-CMP-9, import/export).

Every write calls a service (which records the operation, R-AUD-3).
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django_tenants.utils import tenant_context
from import_export.admin import ImportExportModelAdmin

from smsplatform.errors import DomainError
from smsplatform.numbers import normalise_lenient as normalise_number
from tenants.admin import admin_actor
from tenants.models import Tenant, TenantKind

from . import frequency, selectors, services
from .models import (
    COUNTRY_RULE_FIELDS,
    ActionKind,
    BannedRule,
    Complaint,
    ComplaintStatus,
    ComplianceSettings,
    CountryRule,
    EnforcementAction,
    FrequencyLimit,
    GlobalBlock,
    LinkDomain,
    OptOut,
    OptOutKeyword,
    OptOutRemoval,
    OptOutReview,
    OptOutSource,
    ProtectedBrand,
    RegisteredSender,
    ReplyReviewStatus,
    ReviewStatus,
    Signature,
    SignatureProof,
    Template,
    TemplateVersion,
    Violation,
    VolumeCounter,
)
from .resources import BannedRuleResource, CountryRuleResource, GlobalBlockResource
from .scanner import validate_pattern


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Required when rejecting; the customer sees it.",
    )

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("reason") or "").strip():
            raise forms.ValidationError("A reason is required to reject.")
        return data


class ReviewAdminMixin:
    """The review queue: pending filings oldest first, bulk approve/reject, a per-item review page.

    Subclasses set review_perm, approve(obj, actor, reason), reject(obj, actor, reason), tenant_of(obj).
    """

    review_perm = ""
    actions = ["approve_selected", "reject_selected", "revoke_selected"]
    ordering = ["created_at", "id"]

    def has_add_permission(self, request):
        return False  # customers file through the API

    def has_change_permission(self, request, obj=None):
        return False  # decisions go through the review page and the actions

    def has_delete_permission(self, request, obj=None):
        return False

    def has_review_permission(self, request):
        return request.user.has_perm(self.review_perm)

    def changelist_view(self, request, extra_context=None):
        # The queue opens on pending filings; the status filter shows the rest.
        if request.method == "GET" and not request.GET:
            return redirect(f"{request.path}?status__exact={ReviewStatus.PENDING}")
        return super().changelist_view(request, extra_context)

    def _url_name(self, suffix: str) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}_{suffix}"

    def get_urls(self):
        return [
            path("<int:pk>/review/", self.admin_site.admin_view(self.review_view), name=self._url_name("review")),
        ] + super().get_urls()

    @admin.display(description="Review")
    def review_link(self, obj):
        if obj.status != ReviewStatus.PENDING:
            return "-"
        return format_html(
            '<a class="button" href="{}">Review</a>', reverse(f"admin:{self._url_name('review')}", args=[obj.pk])
        )

    def review_view(self, request, pk):
        if not self.has_review_permission(request):
            raise PermissionDenied
        obj = get_object_or_404(self.model, pk=pk)
        form = ReviewForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
            try:
                (self.approve if decision == "approve" else self.reject)(obj, admin_actor(request), reason)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"{obj} {'approved' if decision == 'approve' else 'rejected'}.")
                return redirect(f"admin:{self._url_name('changelist')}")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Review {obj}",
            "obj": obj,
            "form": form,
            "opts": self.model._meta,
            "details": self.review_details(obj),
            "history": selectors.tenant_review_history(tenant=self.tenant_of(obj)),
            "tenant": self.tenant_of(obj),
        }
        return TemplateResponse(request, "admin/compliance/review.html", context)

    def review_details(self, obj) -> list[tuple[str, object]]:
        return []

    @admin.action(description="Approve selected pending filings", permissions=["review"])
    def approve_selected(self, request, queryset):
        done = 0
        for obj in queryset.filter(status=ReviewStatus.PENDING):
            try:
                self.approve(obj, admin_actor(request), "")
            except DomainError as exc:  # e.g. possible impersonation: approve on its review page, with a reason
                messages.error(request, f"{obj}: {exc.message}")
                continue
            done += 1
        messages.success(request, f"Approved {done} filing(s).")

    @admin.action(description="Revoke selected approved filings (asks for a reason)", permissions=["review"])
    def revoke_selected(self, request, queryset):
        """R-CMP-1/R-CMP-2: take an approval back; sends stop at once. Recorded with the reason."""
        approved = queryset.filter(status=ReviewStatus.APPROVED)
        reason = (request.POST.get("reason") or "").strip()
        if request.POST.get("confirm") == "yes" and reason:
            with transaction.atomic():
                for obj in approved:
                    self.revoke(obj, admin_actor(request), reason)
            messages.success(request, f"Revoked {len(approved)} approval(s).")
            return None
        if request.POST.get("confirm") == "yes":
            messages.error(request, "A reason is required to revoke.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke approvals",
            "objects": approved,
            "opts": self.model._meta,
            "action": "revoke_selected",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/compliance/reject_reason.html", context)

    @admin.action(description="Reject selected pending filings (asks for a reason)", permissions=["review"])
    def reject_selected(self, request, queryset):
        pending = queryset.filter(status=ReviewStatus.PENDING)
        reason = (request.POST.get("reason") or "").strip()
        if request.POST.get("confirm") == "yes" and reason:
            with transaction.atomic():
                for obj in pending:
                    self.reject(obj, admin_actor(request), reason)
            messages.success(request, f"Rejected {len(pending)} filing(s).")
            return None
        if request.POST.get("confirm") == "yes":
            messages.error(request, "A reason is required to reject.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject filings",
            "objects": pending,
            "opts": self.model._meta,
            "action": "reject_selected",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/compliance/reject_reason.html", context)


# --- signatures ------------------------------------------------------------------------------


class SignatureProofInline(admin.TabularInline):
    model = SignatureProof
    extra = 0
    can_delete = False
    fields = ["download", "uploaded_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="File")
    def download(self, proof):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:compliance_signature_proof", args=[proof.signature_id, proof.pk]),
            proof.file.name.rsplit("/", 1)[-1],
        )


@admin.register(Signature)
class SignatureAdmin(ReviewAdminMixin, admin.ModelAdmin):
    """R-CMP-1 review queue."""

    review_perm = "compliance.review_signature"
    list_display = ["signature", "tenant", "status", "impersonation", "created_at", "review_link"]
    list_filter = ["status", "impersonation_suspected", ("tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["text", "tenant__name"]
    readonly_fields = [
        "tenant",
        "text",
        "purpose",
        "status",
        "review_reason",
        "reviewed_by",
        "reviewed_at",
        "impersonation_suspected",
        "flag_detail",
        "revoked_reason",
        "revoked_by",
        "revoked_at",
        "created_at",
    ]
    inlines = [SignatureProofInline]

    @admin.display(description="Signature", ordering="text")
    def signature(self, obj):
        return f"【{obj.text}】"

    @admin.display(description="Possible impersonation", boolean=False)
    def impersonation(self, obj):
        if obj.impersonation_suspected:
            return format_html('<strong style="color:#ba2121">⚠ {}</strong>', obj.flag_detail)
        return ""

    def tenant_of(self, obj):
        return obj.tenant

    def approve(self, obj, actor, reason):
        services.approve_signature(signature=obj, actor=actor, reason=reason)

    def reject(self, obj, actor, reason):
        services.reject_signature(signature=obj, actor=actor, reason=reason)

    def revoke(self, obj, actor, reason):
        services.revoke_signature(signature=obj, actor=actor, reason=reason)

    def review_details(self, obj):
        proofs = format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:compliance_signature_proof", args=[obj.pk, p.pk]), p.file.name.rsplit("/", 1)[-1])
                for p in obj.proofs.all()
            ),
        )
        rows = [
            ("Signature", f"【{obj.text}】"),
            ("Tenant", obj.tenant),
            ("Purpose", obj.purpose),
            ("Filed", obj.created_at),
            ("Proof documents", proofs),
        ]
        # Checked again now: another tenant's filing may have been approved since this one came in.
        others = services.approved_elsewhere(tenant=obj.tenant, match_key=obj.match_key)
        if others:
            rows.append(("⚠ Possible impersonation", f"Already approved for: {', '.join(others)}"))
        brands = services.protected_brands_in(obj.text)
        if brands:
            rows.append(("⚠ Protected brand", ", ".join(brands)))
        return rows

    def get_urls(self):
        return [
            path(
                "<int:pk>/proof/<int:proof_id>/",
                self.admin_site.admin_view(self.proof_view),
                name="compliance_signature_proof",
            ),
        ] + super().get_urls()

    def proof_view(self, request, pk, proof_id):
        """Proofs are private: served only to staff who may view signatures."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        proof = get_object_or_404(SignatureProof, pk=proof_id, signature_id=pk)
        try:
            return FileResponse(proof.file.open("rb"), as_attachment=True, filename=proof.file.name.rsplit("/", 1)[-1])
        except FileNotFoundError as exc:
            raise Http404 from exc


# --- templates -------------------------------------------------------------------------------


def variables_table(variables: dict):
    """Declared template variables as a table (name, kind, limit), not a Python dict (issue 14)."""
    from .checks import DEFAULT_MAX_LENGTH

    if not variables:
        return "none"
    rows = []
    for name, spec in variables.items():
        spec = spec if isinstance(spec, dict) else {"kind": spec}
        kind = spec.get("kind", "")
        limit = (
            "4–8 digits" if kind == "code" else f"≤ {spec.get('max_length', DEFAULT_MAX_LENGTH.get(kind, '?'))} chars"
        )
        rows.append(("${" + name + "}", kind, limit))
    return format_html(
        '<table class="template-variables"><tr><th>variable</th><th>kind</th><th>limit</th></tr>{}</table>',
        format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>", rows),
    )


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReviewAdminMixin, admin.ModelAdmin):
    """R-CMP-2 review queue: every filed version (a revision of an approved template too)."""

    review_perm = "compliance.review_template"
    list_display = [
        "template_code",
        "number",
        "tenant",
        "message_type",
        "short_body",
        "status",
        "flagged",
        "created_at",
        "review_link",
    ]
    list_filter = ["status", "template__message_type", ("template__tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["template__code", "body", "template__tenant__name"]
    readonly_fields = [
        "template",
        "number",
        "body",
        "variables_display",
        "status",
        "review_reason",
        "reviewed_by",
        "reviewed_at",
        "flags",
        "created_at",
    ]
    exclude = ["variables"]  # shown as a table (variables_display)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("template__tenant", "template__approved_version")

    @admin.display(description="Variables")
    def variables_display(self, obj):
        return variables_table(obj.variables)

    @admin.display(description="Template", ordering="template__code")
    def template_code(self, obj):
        return obj.template.code

    @admin.display(description="Tenant")
    def tenant(self, obj):
        return obj.template.tenant

    @admin.display(description="Type")
    def message_type(self, obj):
        return obj.template.get_message_type_display()

    @admin.display(description="Body")
    def short_body(self, obj):
        return obj.body if len(obj.body) <= 60 else obj.body[:57] + "…"

    @admin.display(description="Flags")
    def flagged(self, obj):
        if not obj.flags:
            return ""
        return format_html('<strong style="color:#ba2121">⚠ {}</strong>', "; ".join(f["detail"] for f in obj.flags))

    def tenant_of(self, obj):
        return obj.template.tenant

    def approve(self, obj, actor, reason):
        services.approve_template_version(version=obj, actor=actor, reason=reason)

    def reject(self, obj, actor, reason):
        services.reject_template_version(version=obj, actor=actor, reason=reason)

    def revoke(self, obj, actor, reason):
        services.revoke_template_version(version=obj, actor=actor, reason=reason)

    def review_details(self, obj):
        approved = obj.template.approved_version
        rows = [
            ("Template", f"{obj.template.code} {obj.template.name}"),
            ("Tenant", obj.template.tenant),
            ("Type", obj.template.get_message_type_display()),
            ("Version", obj.number),
            ("Body", obj.body),
            ("Variables", variables_table(obj.variables)),
        ]
        if approved is not None and approved.pk != obj.pk:
            rows.append((f"Currently sending (v{approved.number})", approved.body))
        for flag in obj.flags:
            rows.append(("⚠ Banned-content hold rule", flag["detail"]))
        return rows


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    extra = 0
    can_delete = False
    fields = ["number", "body", "variables_display", "status", "review_reason", "reviewed_by", "created_at"]
    readonly_fields = fields

    @admin.display(description="Variables")
    def variables_display(self, obj):
        return variables_table(obj.variables)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "tenant", "message_type", "approved_version", "created_at"]
    list_filter = ["message_type"]
    search_fields = ["code", "name", "tenant__name"]
    readonly_fields = ["tenant", "code", "name", "message_type", "approved_version", "created_at"]
    inlines = [TemplateVersionInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- banned rules and block list -------------------------------------------------------------


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
class BannedRuleAdmin(ImportExportModelAdmin):
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

    def delete_model(self, request, obj):
        services.delete_banned_rules(rule_ids=[obj.pk], actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        services.delete_banned_rules(rule_ids=list(queryset.values_list("pk", flat=True)), actor=admin_actor(request))

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


# --- enforcement -----------------------------------------------------------------------------


class EnforcementForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k.value, k.label) for k in ActionKind])
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    deadline = forms.DateTimeField(required=False, help_text="Rectification: by when (YYYY-MM-DD HH:MM).")
    per_minute = forms.IntegerField(required=False, min_value=0, help_text="Volume cap: messages per minute.")
    per_day = forms.IntegerField(required=False, min_value=0, help_text="Volume cap: messages per day.")
    illegal_messages = forms.IntegerField(
        required=False, min_value=0, initial=0, help_text="Penalty: illegal messages."
    )
    channels_cut = forms.IntegerField(
        required=False, min_value=0, initial=0, help_text="Penalty: carrier channels cut."
    )

    def clean(self):
        data = super().clean()
        if data.get("kind") == ActionKind.RECTIFICATION and not data.get("deadline"):
            raise forms.ValidationError("A rectification needs a deadline.")
        if data.get("kind") == ActionKind.VOLUME_CAP and data.get("per_minute") is None and data.get("per_day") is None:
            raise forms.ValidationError("A volume cap needs messages per minute and/or per day.")
        return data


def take_enforcement_action(*, violation: Violation, data: dict, actor) -> EnforcementAction:
    tenant, kind = violation.tenant, data["kind"]
    common = {"tenant": tenant, "actor": actor, "reason": data["reason"], "violation": violation}
    if kind == ActionKind.WARNING:
        return services.warn_tenant(**common)
    if kind == ActionKind.RECTIFICATION:
        return services.order_rectification(deadline=data["deadline"], **common)
    if kind == ActionKind.VOLUME_CAP:
        return services.cap_volume(per_minute=data.get("per_minute"), per_day=data.get("per_day"), **common)
    if kind == ActionKind.SUSPEND:
        return services.suspend_sending(**common)
    if kind == ActionKind.FORFEIT:
        return services.forfeit_balance(**common)
    if kind == ActionKind.PENALTY:
        return services.charge_penalty(
            illegal_messages=data.get("illegal_messages") or 0, channels_cut=data.get("channels_cut") or 0, **common
        )
    return services.terminate(**common)


class EnforcementActionInline(admin.TabularInline):
    model = EnforcementAction
    extra = 0
    can_delete = False
    fields = ["kind", "reason", "operator", "details", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ViolationForm(forms.ModelForm):
    class Meta:
        model = Violation
        fields = ["tenant", "category", "template", "message_reference", "message_count", "evidence"]


@admin.register(Violation)
class ViolationAdmin(admin.ModelAdmin):
    """R-CMP-6: record a violation, then take actions on the ladder from its page."""

    form = ViolationForm
    list_display = ["id", "tenant", "category", "message_count", "recorded_by", "created_at", "enforce_link"]
    list_filter = ["category"]
    search_fields = ["tenant__name", "evidence", "message_reference"]
    inlines = [EnforcementActionInline]
    autocomplete_fields = []

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return (
            [
                "tenant",
                "category",
                "template",
                "message_reference",
                "message_count",
                "evidence",
                "recorded_by",
                "created_at",
            ]
            if obj
            else []
        )

    @admin.display(description="Enforcement")
    def enforce_link(self, obj):
        return format_html(
            '<a class="button" href="{}">Take action</a>', reverse("admin:compliance_violation_enforce", args=[obj.pk])
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = services.record_violation(
            tenant=data["tenant"],
            category=data["category"],
            template=data.get("template"),
            message_reference=data.get("message_reference", ""),
            message_count=data.get("message_count") or 1,
            evidence=data["evidence"],
            actor=admin_actor(request),
        )
        obj.pk = created.pk

    def save_related(self, request, form, formsets, change):
        pass

    def get_urls(self):
        return [
            path(
                "<int:pk>/enforce/", self.admin_site.admin_view(self.enforce_view), name="compliance_violation_enforce"
            ),
        ] + super().get_urls()

    def enforce_view(self, request, pk):
        if not request.user.has_perm("compliance.enforce"):
            raise PermissionDenied
        violation = get_object_or_404(Violation.objects.select_related("tenant"), pk=pk)
        form = EnforcementForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                action = take_enforcement_action(
                    violation=violation, data=form.cleaned_data, actor=admin_actor(request)
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            except ImportError:
                messages.error(request, "Billing is not installed: forfeits and penalties are unavailable.")
            else:
                messages.success(request, f"{action.get_kind_display()} recorded for {violation.tenant}.")
                return redirect("admin:compliance_violation_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Enforce: violation #{violation.pk}",
            "violation": violation,
            "form": form,
            "opts": self.model._meta,
            "history": selectors.tenant_review_history(tenant=violation.tenant),
        }
        return TemplateResponse(request, "admin/compliance/enforce.html", context)


@admin.register(EnforcementAction)
class EnforcementActionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tenant", "kind", "reason", "operator", "violation"]
    list_filter = ["kind"]
    search_fields = ["tenant__name", "reason", "operator"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- complaints ------------------------------------------------------------------------------


class ComplaintForm(forms.ModelForm):
    class Meta:
        model = Complaint
        fields = ["tenant", "source", "number", "message_reference", "message_text", "text"]


@admin.register(Complaint)
class ComplaintAdmin(admin.ModelAdmin):
    """R-CMP-7: complaints with their 72-hour deadline; overdue ones stand out."""

    form = ComplaintForm
    list_display = ["id", "tenant", "source", "number", "status", "due", "answered_at", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["tenant__name", "number", "text"]
    ordering = ["answer_due_at"]
    actions = ["close_complaints", "escalate_overdue"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "tenant",
            "source",
            "number",
            "message_reference",
            "message_text",
            "text",
            "status",
            "answer_due_at",
            "answer",
            "answered_at",
            "escalated_at",
            "created_by",
            "created_at",
        ]

    @admin.display(description="Answer due", ordering="answer_due_at")
    def due(self, obj):
        overdue = obj.status == ComplaintStatus.ESCALATED or (
            obj.status == ComplaintStatus.OPEN and obj.answer_due_at < timezone.now()
        )
        if overdue:
            return format_html(
                '<strong class="overdue" style="color:#ba2121">OVERDUE {}</strong>',
                timezone.localtime(obj.answer_due_at).strftime("%Y-%m-%d %H:%M"),
            )
        return timezone.localtime(obj.answer_due_at).strftime("%Y-%m-%d %H:%M")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = services.file_complaint(
            tenant=data["tenant"],
            source=data["source"],
            number=data["number"],
            text=data["text"],
            message_reference=data.get("message_reference", ""),
            message_text=data.get("message_text", ""),
            actor=admin_actor(request),
        )
        obj.pk = created.pk

    @admin.action(description="Close selected complaints", permissions=["handle"])
    def close_complaints(self, request, queryset):
        for complaint in queryset:
            services.close_complaint(complaint=complaint, actor=admin_actor(request), reason="closed by operator")
        messages.success(request, f"Closed {queryset.count()} complaint(s).")

    @admin.action(description="Escalate all overdue complaints now", permissions=["handle"])
    def escalate_overdue(self, request, queryset):
        count = services.escalate_overdue_complaints()
        messages.success(request, f"Escalated {count} overdue complaint(s).")

    def has_handle_permission(self, request):
        return request.user.has_perm("compliance.handle_complaint")


# --- per-tenant settings ---------------------------------------------------------------------


class ComplianceSettingsForm(forms.ModelForm):
    enabled_countries = forms.CharField(required=False, help_text="ISO country codes, comma separated (R-CMP-9).")

    class Meta:
        model = ComplianceSettings
        fields = [
            "tenant",
            "consent_policy",
            "per_minute_cap",
            "per_day_cap",
            "spike_multiple",
            "enabled_countries",
            "rectification_deadline",
        ]

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


class RegisteredSenderInline(admin.TabularInline):
    model = RegisteredSender
    extra = 0
    can_delete = False
    fields = ["tenant", "sender_id", "note", "created_by", "created_at"]
    readonly_fields = fields
    verbose_name_plural = "registered senders (add them under Compliance › Registered senders)"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CountryRule)
class CountryRuleAdmin(ImportExportModelAdmin):
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

    def delete_model(self, request, obj):
        services.delete_country_rules(rule_ids=[obj.pk], actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        services.delete_country_rules(rule_ids=list(queryset.values_list("pk", flat=True)), actor=admin_actor(request))


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


@admin.register(VolumeCounter)
class VolumeCounterAdmin(admin.ModelAdmin):
    """R-CMP-8: what each tenant sent, per minute / hour / day (read-only)."""

    list_display = ["tenant", "granularity", "bucket_start", "count"]
    list_filter = ["granularity"]
    search_fields = ["tenant__name"]
    ordering = ["-bucket_start"]
    date_hierarchy = "bucket_start"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FrequencyLimit)
class FrequencyLimitAdmin(admin.ModelAdmin):
    """R-CMP-8 per-recipient repeat limits: platform defaults (no tenant) and per-tenant overrides.
    Changes go through compliance.frequency (operation trail)."""

    list_display = ["message_type", "tenant", "per_minute", "per_hour", "per_day", "updated_at"]
    list_filter = ["message_type", ("tenant", admin.EmptyFieldListFilter)]
    search_fields = ["tenant__name"]
    autocomplete_fields = ["tenant"]
    fields = ["tenant", "message_type", "per_minute", "per_hour", "per_day"]

    def save_model(self, request, obj, form, change):
        frequency.save_frequency_limit(limit=obj, actor=admin_actor(request))

    def delete_model(self, request, obj):
        frequency.delete_frequency_limits(limit_ids=[obj.pk], actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        frequency.delete_frequency_limits(
            limit_ids=list(queryset.values_list("pk", flat=True)), actor=admin_actor(request)
        )


# --- issue 11: protected brands, reply keywords, replies to review, link domains ----------------


@admin.register(ProtectedBrand)
class ProtectedBrandAdmin(admin.ModelAdmin):
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

    def delete_model(self, request, obj):
        services.delete_protected_brands(brand_ids=[obj.pk], actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        services.delete_protected_brands(
            brand_ids=list(queryset.values_list("pk", flat=True)), actor=admin_actor(request)
        )


@admin.register(OptOutKeyword)
class OptOutKeywordAdmin(admin.ModelAdmin):
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

    def delete_model(self, request, obj):
        services.delete_opt_out_keywords(keyword_ids=[obj.pk], actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        services.delete_opt_out_keywords(
            keyword_ids=list(queryset.values_list("pk", flat=True)), actor=admin_actor(request)
        )


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
