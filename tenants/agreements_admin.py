"""Operator admin for issue 18: notices and broadcasts (R-DLV-7), held-volume answers (R-CMP-8),
legal holds and evidence packages (R-AUD-5), terms and the objection queue (R-TEN-7),
qualifications (R-TEN-6). Every write calls a service, which records it in the operation trail;
each write is gated by its own permission (see the Meta.permissions of the models).
"""

from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html

from smsplatform.admin_bases import ReadOnlyAdmin, ReadOnlyInline
from smsplatform.errors import DomainError

from . import legal_hold, notices, qualifications, terms
from .admin_support import admin_actor
from .models import (
    EvidencePackage,
    HoldScope,
    LegalHold,
    Notice,
    NoticeBroadcast,
    NoticeDelivery,
    Qualification,
    QualificationStatus,
    Reconfirmation,
    Tenant,
    TenantKind,
    TermsAnswer,
    TermsResponse,
    TermsVersion,
)


class _AbortSave(Exception):
    """A service refused the save; the message is already queued for the operator."""


class ServiceAdmin(admin.ModelAdmin):
    """save_model calls `self.save_with_service`; a refused save shows the reason and reloads."""

    def save_model(self, request, obj, form, change):
        try:
            saved = self.save_with_service(request, obj, form, change)
        except DomainError as exc:
            messages.error(request, exc.message)
            raise _AbortSave from exc
        if saved is not None:
            obj.pk = saved.pk

    def save_with_service(self, request, obj, form, change):
        raise NotImplementedError

    def save_related(self, request, form, formsets, change):
        pass  # services write the rows

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except _AbortSave:
            return redirect(request.path)

    def has_delete_permission(self, request, obj=None):
        return False  # records of duties are never deleted


# --- notices (R-DLV-7) -------------------------------------------------------------------------


class NoticeDeliveryInline(ReadOnlyInline):
    model = NoticeDelivery
    fields = ["channel", "address", "state", "attempts", "last_error", "callback_id", "created_at", "sent_at"]


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    """Read-only: operators compose broadcasts; duties send their own notices."""

    list_display = ["id", "tenant", "kind", "subject_en", "created_at", "acknowledged_at", "delivery_states"]
    list_filter = ["kind", ("acknowledged_at", admin.EmptyFieldListFilter)]
    search_fields = ["tenant__name", "subject_en", "subject_zh", "dedupe_key"]
    readonly_fields = [f.name for f in Notice._meta.fields]
    inlines = [NoticeDeliveryInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant").prefetch_related("deliveries")

    @admin.display(description="deliveries")
    def delivery_states(self, obj):
        return ", ".join(f"{d.channel}: {d.state}" for d in obj.deliveries.all())

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Webhook records catch up with their callbacks when someone looks.
        notices.refresh_webhook_deliveries(deliveries=NoticeDelivery.objects.filter(notice_id=object_id))
        return super().change_view(request, object_id, form_url, extra_context)


class BroadcastForm(forms.ModelForm):
    class Meta:
        model = NoticeBroadcast
        fields = ["kind", "subject_zh", "subject_en", "body_zh", "body_en", "effective_at", "all_tenants", "tenants"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenants"].queryset = Tenant.objects.exclude(kind=TenantKind.PLATFORM)
        self.fields["tenants"].required = False

    def clean(self):
        data = super().clean()
        if not data.get("all_tenants") and not data.get("tenants"):
            raise forms.ValidationError("Choose tenants, or send to all tenants.")
        try:
            notices.check_notice_period(kind=data.get("kind"), effective_at=data.get("effective_at"))
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(NoticeBroadcast)
class NoticeBroadcastAdmin(ServiceAdmin):
    """Compose a notice for all tenants or a selection; it is sent when saved."""

    form = BroadcastForm
    list_display = ["id", "kind", "subject_en", "all_tenants", "notice_count", "created_by_label", "sent_at"]
    list_filter = ["kind", "all_tenants"]
    search_fields = ["subject_en", "subject_zh"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [*(f.name for f in NoticeBroadcast._meta.fields), "tenants"]

    def has_add_permission(self, request):
        return request.user.has_perm("tenants.broadcast_notice")

    def has_change_permission(self, request, obj=None):
        return False

    def save_with_service(self, request, obj, form, change):
        data = form.cleaned_data
        return notices.compose_broadcast(
            kind=data["kind"],
            subject_zh=data["subject_zh"],
            subject_en=data["subject_en"],
            body_zh=data["body_zh"],
            body_en=data["body_en"],
            effective_at=data.get("effective_at"),
            all_tenants=data["all_tenants"],
            tenants=list(data.get("tenants") or []),
            actor=admin_actor(request),
        )


@admin.register(Reconfirmation)
class ReconfirmationAdmin(ReadOnlyAdmin):
    """Tenants' answers to held volume (R-CMP-8)."""

    list_display = ["id", "tenant", "answer", "message_count", "answered_by_label", "answered_at"]
    list_filter = ["answer"]
    search_fields = ["tenant__name"]
    readonly_fields = [f.name for f in Reconfirmation._meta.fields]


# --- legal holds and evidence (R-AUD-5) ----------------------------------------------------------


class LegalHoldForm(forms.ModelForm):
    message_ids_text = forms.CharField(
        label="Message ids", required=False, help_text="for scope 'listed messages': ids separated by commas"
    )

    class Meta:
        model = LegalHold
        fields = ["tenant", "basis", "reference", "scope", "number", "from_at", "to_at", "reason"]

    def clean_message_ids_text(self):
        text = self.cleaned_data.get("message_ids_text") or ""
        try:
            return [int(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError as exc:
            raise forms.ValidationError("Give message ids as numbers separated by commas.") from exc


class ReleaseHoldForm(forms.ModelForm):
    release_reason_text = forms.CharField(label="Release reason", widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = LegalHold
        fields = []


@admin.register(LegalHold)
class LegalHoldAdmin(ServiceAdmin):
    list_display = ["id", "tenant", "basis", "reference", "scope", "placed_by_label", "placed_at", "released_at"]
    list_filter = ["basis", "scope", ("released_at", admin.EmptyFieldListFilter)]
    search_fields = ["tenant__name", "reference", "number"]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = LegalHoldForm if obj is None else ReleaseHoldForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*LegalHoldForm.Meta.fields[:4], "message_ids_text", *LegalHoldForm.Meta.fields[4:]]
        readonly = [f.name for f in LegalHold._meta.fields]
        return readonly + (["release_reason_text"] if obj.is_active else [])

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [f.name for f in LegalHold._meta.fields]

    def has_add_permission(self, request):
        return request.user.has_perm("tenants.place_legal_hold")

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("tenants.release_legal_hold")

    def save_with_service(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            return legal_hold.release_hold(
                hold=LegalHold.objects.get(pk=obj.pk), actor=admin_actor(request), reason=data["release_reason_text"]
            )
        return legal_hold.place_hold(
            tenant=data["tenant"],
            basis=data["basis"],
            reference=data["reference"],
            reason=data["reason"],
            scope=data["scope"],
            message_ids=data.get("message_ids_text") if data["scope"] == HoldScope.MESSAGES else None,
            number=data.get("number") or "",
            from_at=data.get("from_at"),
            to_at=data.get("to_at"),
            actor=admin_actor(request),
        )


class EvidenceForm(forms.ModelForm):
    class Meta:
        model = EvidencePackage
        fields = ["hold", "violation_id", "request_reference", "authority"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hold"].required = False
        self.fields["hold"].queryset = LegalHold.objects.filter(released_at__isnull=True)
        self.fields["hold"].help_text = "an active hold, or leave empty and give a violation id"

    def clean(self):
        data = super().clean()
        if not data.get("hold") and not data.get("violation_id"):
            raise forms.ValidationError("Choose a hold or give a violation id.")
        return data


class HandoverForm(forms.ModelForm):
    handed_to_text = forms.CharField(label="Handed over to", help_text="officer, unit and case number")
    method_text = forms.CharField(label="Method", help_text="in person, encrypted medium, …")

    class Meta:
        model = EvidencePackage
        fields = []


@admin.register(EvidencePackage)
class EvidencePackageAdmin(ServiceAdmin):
    list_display = [
        "id",
        "tenant",
        "request_reference",
        "authority",
        "message_count",
        "sha256",
        "compiled_at",
        "handed_over_at",
        "download",
    ]
    list_filter = [("handed_over_at", admin.EmptyFieldListFilter)]
    search_fields = ["tenant__name", "request_reference", "authority", "sha256"]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = EvidenceForm if obj is None else HandoverForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return EvidenceForm.Meta.fields
        readonly = [f.name for f in EvidencePackage._meta.fields]
        return readonly + (["handed_to_text", "method_text"] if obj.handed_over_at is None else [])

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [f.name for f in EvidencePackage._meta.fields]

    def has_add_permission(self, request):
        return request.user.has_perm("tenants.compile_evidence")

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("tenants.hand_over_evidence")

    def save_with_service(self, request, obj, form, change):
        data, actor = form.cleaned_data, admin_actor(request)
        if change:
            return legal_hold.record_handover(
                package=EvidencePackage.objects.get(pk=obj.pk),
                handed_to=data["handed_to_text"],
                method=data["method_text"],
                actor=actor,
            )
        if data.get("hold"):
            return legal_hold.compile_evidence_package(
                hold=data["hold"],
                request_reference=data["request_reference"],
                authority=data["authority"],
                actor=actor,
                violation_id=data.get("violation_id"),
            )
        return legal_hold.evidence_from_violation(
            violation_id=data["violation_id"],
            request_reference=data["request_reference"],
            authority=data["authority"],
            actor=actor,
        )

    @admin.display(description="file")
    def download(self, obj):
        return format_html(
            '<a href="{}">download</a>', reverse("admin:tenants_evidencepackage_download", args=[obj.pk])
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="tenants_evidencepackage_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, pk):
        """Only who may compile or hand over packages downloads them; each download is recorded."""
        if not (
            request.user.has_perm("tenants.compile_evidence") or request.user.has_perm("tenants.hand_over_evidence")
        ):
            raise PermissionDenied
        package = get_object_or_404(EvidencePackage, pk=pk)
        from .services import record_operation

        record_operation(actor=admin_actor(request), action="evidence.download", tenant=package.tenant, obj=package)
        file_path = Path(settings.MEDIA_ROOT) / package.file_name
        return FileResponse(file_path.open("rb"), as_attachment=True, filename=file_path.name)


# --- terms (R-TEN-7) -----------------------------------------------------------------------------


class TermsCreateForm(forms.ModelForm):
    class Meta:
        model = TermsVersion
        fields = ["version", "title", "body_zh", "body_en"]


class TermsPublishForm(forms.ModelForm):
    publish_effective_at = forms.DateTimeField(
        label="Publish now, effective at", required=False, help_text="at least 7 days from now (R-TEN-7)"
    )

    class Meta:
        model = TermsVersion
        fields = []


@admin.register(TermsVersion)
class TermsVersionAdmin(ServiceAdmin):
    list_display = ["version", "title", "published_at", "effective_at", "objection_deadline", "answers"]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = TermsCreateForm if obj is None else TermsPublishForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return TermsCreateForm.Meta.fields
        readonly = [f.name for f in TermsVersion._meta.fields]
        can_publish = obj.published_at is None and request.user.has_perm("tenants.publish_terms")
        return readonly + (["publish_effective_at"] if can_publish else [])

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [f.name for f in TermsVersion._meta.fields]

    @admin.display(description="accepted / objected")
    def answers(self, obj):
        accepted = obj.responses.filter(answer=TermsAnswer.ACCEPT).count()
        return f"{accepted} / {obj.responses.filter(answer=TermsAnswer.OBJECT).count()}"

    def save_with_service(self, request, obj, form, change):
        data, actor = form.cleaned_data, admin_actor(request)
        if not change:
            return terms.create_terms_version(actor=actor, **{f: data[f] for f in TermsCreateForm.Meta.fields})
        if data.get("publish_effective_at"):
            if not request.user.has_perm("tenants.publish_terms"):
                raise PermissionDenied
            return terms.publish_terms(
                terms=TermsVersion.objects.get(pk=obj.pk), effective_at=data["publish_effective_at"], actor=actor
            )
        return None


class ResolveObjectionForm(forms.ModelForm):
    resolution_text = forms.CharField(label="Resolution", widget=forms.Textarea(attrs={"rows": 3}))

    class Meta:
        model = TermsResponse
        fields = []


@admin.register(TermsResponse)
class TermsResponseAdmin(ServiceAdmin):
    """Answers to agreement versions; filter 'objected' + 'not resolved' for the objection queue."""

    form = ResolveObjectionForm
    list_display = ["tenant", "terms", "answer", "answered_at", "comment", "resolved_at"]
    list_filter = ["answer", ("resolved_at", admin.EmptyFieldListFilter), "terms"]
    search_fields = ["tenant__name", "comment"]

    def get_fields(self, request, obj=None):
        readonly = [f.name for f in TermsResponse._meta.fields]
        open_objection = obj is not None and obj.answer == TermsAnswer.OBJECT and obj.resolved_at is None
        return readonly + (["resolution_text"] if open_objection else [])

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in TermsResponse._meta.fields]

    def has_add_permission(self, request):
        return False  # tenants answer through the API

    def save_with_service(self, request, obj, form, change):
        return terms.resolve_objection(
            response=TermsResponse.objects.get(pk=obj.pk),
            actor=admin_actor(request),
            resolution=form.cleaned_data["resolution_text"],
        )


# --- qualifications (R-TEN-6) --------------------------------------------------------------------


@admin.register(Qualification)
class QualificationAdmin(ReadOnlyAdmin):
    """Tenants file through the API; operators approve or reject with the actions."""

    list_display = ["id", "tenant", "kind", "title", "number", "expires_on", "status", "filed_at", "reviewed_at"]
    list_filter = ["status", "kind"]
    search_fields = ["tenant__name", "title", "number"]
    readonly_fields = [f.name for f in Qualification._meta.fields]
    actions = ["approve", "reject"]

    def has_review_permission(self, request):
        return request.user.has_perm("tenants.review_qualification")

    def _review(self, request, queryset, to_status: str, reason: str):
        done = 0
        for item in queryset.filter(status=QualificationStatus.PENDING):
            try:
                qualifications.review_qualification(
                    qualification=item, to_status=to_status, reason=reason, actor=admin_actor(request)
                )
                done += 1
            except DomainError as exc:
                messages.error(request, f"{item}: {exc.message}")
        messages.success(request, f"{done} qualification(s) {to_status}.")

    @admin.action(description="Approve selected qualifications", permissions=["review"])
    def approve(self, request, queryset):
        self._review(request, queryset, QualificationStatus.APPROVED, "documents checked")

    @admin.action(
        description="Reject selected qualifications (documents unreadable or invalid)", permissions=["review"]
    )
    def reject(self, request, queryset):
        self._review(request, queryset, QualificationStatus.REJECTED, "documents unreadable or invalid")
