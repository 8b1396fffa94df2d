"""Cases decided by an operator: billing disputes (R-BIL-8) and dormant accounts (R-TEN-4)."""

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
    Dispute,
    DisputeState,
    DormancyCase,
    DormancyState,
)
from ..money import format_money
from .money import CnyField


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
