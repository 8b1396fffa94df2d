"""Enforcement: violations and the actions taken on them (R-CMP-6), complaints with their deadline
(R-CMP-7).

Every write calls a service (which records the operation, R-AUD-3)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from smsplatform.admin_bases import ReadOnlyAdmin, ReadOnlyInline
from smsplatform.errors import DomainError
from tenants.admin_support import admin_actor

from .. import selectors, services
from ..models import (
    ActionKind,
    Complaint,
    ComplaintStatus,
    EnforcementAction,
    Violation,
)

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


class EnforcementActionInline(ReadOnlyInline):
    model = EnforcementAction
    fields = ["kind", "reason", "operator", "details", "created_at"]


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
class EnforcementActionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "kind", "reason", "operator", "violation"]
    list_filter = ["kind"]
    search_fields = ["tenant__name", "reason", "operator"]


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
