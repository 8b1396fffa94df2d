"""Review queues for what customers file: signatures (R-CMP-1) and template versions (R-CMP-2).

A reviewer approves, rejects or revokes on a per-item page or in bulk; every decision calls a service
(which records the operation, R-AUD-3)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from smsplatform.admin_bases import ReadOnlyAdmin, ReadOnlyInline
from smsplatform.errors import DomainError
from tenants.admin_support import admin_actor

from .. import selectors, services
from ..checks import DEFAULT_MAX_LENGTH
from ..models import (
    ReviewStatus,
    Signature,
    SignatureProof,
    Template,
    TemplateVersion,
)


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


class ReviewAdmin(ReadOnlyAdmin):
    """The review queue: pending filings oldest first, bulk approve/reject, a per-item review page.
    Read-only otherwise: customers file through the API, decisions go through the review page and
    the actions.

    Subclasses set review_perm, approve(obj, actor, reason), reject(obj, actor, reason),
    revoke(obj, actor, reason), tenant_of(obj).
    """

    review_perm = ""
    actions = ["approve_selected", "reject_selected", "revoke_selected"]
    ordering = ["created_at", "id"]

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
        return self._decide_with_reason(
            request,
            queryset.filter(status=ReviewStatus.APPROVED),
            decide=self.revoke,
            action="revoke_selected",
            verb="revoke",
            title="Revoke approvals",
            done="Revoked {} approval(s).",
        )

    @admin.action(description="Reject selected pending filings (asks for a reason)", permissions=["review"])
    def reject_selected(self, request, queryset):
        return self._decide_with_reason(
            request,
            queryset.filter(status=ReviewStatus.PENDING),
            decide=self.reject,
            action="reject_selected",
            verb="reject",
            title="Reject filings",
            done="Rejected {} filing(s).",
        )

    def _decide_with_reason(self, request, objects, *, decide, action: str, verb: str, title: str, done: str):
        """A bulk decision that needs a reason: the reason page first, then every filing in one transaction."""
        reason = (request.POST.get("reason") or "").strip()
        if request.POST.get("confirm") == "yes" and reason:
            with transaction.atomic():
                for obj in objects:
                    decide(obj, admin_actor(request), reason)
            messages.success(request, done.format(len(objects)))
            return None
        if request.POST.get("confirm") == "yes":
            messages.error(request, f"A reason is required to {verb}.")
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "objects": objects,
            "opts": self.model._meta,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/compliance/reject_reason.html", context)


# --- signatures ------------------------------------------------------------------------------


class SignatureProofInline(ReadOnlyInline):
    model = SignatureProof
    fields = ["download", "uploaded_at"]

    @admin.display(description="File")
    def download(self, proof):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:compliance_signature_proof", args=[proof.signature_id, proof.pk]),
            proof.file.name.rsplit("/", 1)[-1],
        )


@admin.register(Signature)
class SignatureAdmin(ReviewAdmin):
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
class TemplateVersionAdmin(ReviewAdmin):
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


class TemplateVersionInline(ReadOnlyInline):
    model = TemplateVersion
    fields = ["number", "body", "variables_display", "status", "review_reason", "reviewed_by", "created_at"]

    @admin.display(description="Variables")
    def variables_display(self, obj):
        return variables_table(obj.variables)


@admin.register(Template)
class TemplateAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "tenant", "message_type", "approved_version", "created_at"]
    list_filter = ["message_type"]
    search_fields = ["code", "name", "tenant__name"]
    readonly_fields = ["tenant", "code", "name", "message_type", "approved_version", "created_at"]
    inlines = [TemplateVersionInline]
