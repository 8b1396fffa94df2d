"""Admin of the send log's features (R-AUD-2, R-AUD-3, R-AUD-4, R-BIL-7): auditor exports (request,
progress, permission-checked download), the operation trail's list and export, erasure requests,
and the operators' dashboard (/admin/dashboard/, wired by smsplatform.admin_site.PlatformAdminSite).
Every write calls a service in delivery/sendlog/.
"""

import hashlib
import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ExportMixin

from smsplatform.errors import DomainError
from smsplatform.worklist import todays_work
from tenants.admin_support import admin_actor
from tenants.models import OperationRecord, Tenant, TenantKind
from tenants.services import record_operation

from .models import ErasureRequest, ExportFormat, ExportJob, ExportKind, ExportState, MessageStatus
from .sendlog.jobs import describe_filters, explain_empty_export, open_export_file, record_inline_export, request_export
from .sendlog.retention import process_erasure, request_erasure
from .sendlog.trail import OperationRecordResource
from .stats import dashboard_data, readable_dashboard, readable_groups, send_stats


class _AbortSave(Exception):
    """A service refused the save; the message is already queued for the operator."""


@admin.register(OperationRecord)
class OperationRecordAdmin(ExportMixin, admin.ModelAdmin):
    """Append-only (R-AUD-3): browsable, never edited; exportable by auditors (every export recorded)."""

    resource_classes = [OperationRecordResource]

    list_display = ["created_at", "actor_label", "tenant", "action", "object_type", "object_id", "reason"]
    list_filter = ["action", "actor_kind"]
    search_fields = ["actor_label", "action", "object_id", "reason", "tenant__name"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_export_permission(self, request):
        return request.user.has_perm("delivery.export_operation_records")

    def get_export_data(self, file_format, request, queryset, **kwargs):
        data = super().get_export_data(file_format, request, queryset, **kwargs)
        if isinstance(data, str) and file_format.get_extension() == "csv":
            data = "\ufeff" + data  # a BOM: Excel then reads the UTF-8 (Chinese) correctly
        raw = data.encode() if isinstance(data, str) else data
        record_inline_export(
            user=request.user,
            ip_address=request.META.get("REMOTE_ADDR"),
            kind=ExportKind.OPERATION_RECORDS,
            fmt=file_format.get_extension(),
            filters=dict(request.GET.items()),
            rows=queryset.count(),
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
        )
        return data


# --- exports (R-AUD-2) -----------------------------------------------------------------------


class ExportRequestForm(forms.Form):
    """What an auditor asks for (R-AUD-2). Masking is decided by permission, not by this form."""

    kind = forms.ChoiceField(choices=ExportKind.choices, initial=ExportKind.SEND_LOG)
    tenants = forms.ModelMultipleChoiceField(
        queryset=Tenant.objects.exclude(kind=TenantKind.PLATFORM).order_by("name"),
        required=False,
        help_text="none selected = every tenant (walks every tenant schema)",
    )
    period = forms.ChoiceField(
        choices=[
            ("", "the dates below"),
            ("this_month", "this month"),
            ("last_month", "last month"),
            ("last_7_days", "the last 7 days"),
        ],
        required=False,
        help_text="fills both dates, in the platform's time zone",
    )
    date_from = forms.DateField(required=False, help_text="inclusive", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, help_text="inclusive", widget=forms.DateInput(attrs={"type": "date"}))
    statuses = forms.MultipleChoiceField(choices=MessageStatus.choices, required=False)
    recipient = forms.CharField(required=False, max_length=32, help_text="full number or its ending")
    signature = forms.CharField(required=False, max_length=40)
    template = forms.CharField(required=False, max_length=40, help_text="template code")
    format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.CSV)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="the lawful request this answers")
    background = forms.BooleanField(required=False, help_text="run in the background even when small")

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        first = today.replace(day=1)
        period = data.get("period")
        if period == "this_month":
            data["date_from"], data["date_to"] = first, today
        elif period == "last_month":
            end = first - timedelta(days=1)
            data["date_from"], data["date_to"] = end.replace(day=1), end
        elif period == "last_7_days":
            data["date_from"], data["date_to"] = today - timedelta(days=6), today
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The first day must not be after the last day.")
        return data

    def filters(self) -> dict:
        data = self.cleaned_data
        return {
            "tenant_ids": [t.pk for t in data["tenants"]],
            "date_from": data["date_from"].isoformat() if data["date_from"] else None,
            "date_to": data["date_to"].isoformat() if data["date_to"] else None,
            "statuses": list(data["statuses"]),
            "recipient": data["recipient"],
            "signature": data["signature"],
            "template": data["template"],
        }


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    """Auditor exports (R-AUD-2): request, follow progress, download through a permission check."""

    list_display = [
        "id",
        "kind",
        "format",
        "state_badge",
        "progress",
        "rows_written",
        "requester",
        "created_at",
        "download",
    ]
    list_filter = ["kind", "state", "format"]
    search_fields = ["requested_by_label", "reason", "sha256"]
    # The job page reads like the list: filters as a sentence, the outcome, the download link.
    fields = [
        "kind",
        "format",
        "state",
        "filters_text",
        "outcome",
        "download",
        "reason",
        "requester",
        "ip_address",
        "full_numbers",
        "created_at",
        "started_at",
        "finished_at",
        "file_size",
        "sha256",
        "error",
    ]
    readonly_fields = fields

    @admin.display(description="filters")
    def filters_text(self, obj):
        return describe_filters(kind=obj.kind, filters=obj.filters)

    @admin.display(description="outcome")
    def outcome(self, obj):
        if obj.state == ExportState.DONE and obj.rows_written == 0:
            return explain_empty_export(kind=obj.kind, filters=obj.filters)
        if obj.state == ExportState.DONE:
            return f"{obj.rows_written:,} rows"
        if obj.state == ExportState.FAILED:
            return f"failed: {obj.error[:200]}"
        return f"{obj.get_state_display()}: {obj.progress_percent}% of ~{obj.estimated_rows:,} rows"

    class Media:
        js = ["delivery/export_progress.js"]

    def has_add_permission(self, request):
        user = request.user
        return user.has_perm("delivery.export_send_log") or user.has_perm("delivery.export_operation_records")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="state")
    def state_badge(self, obj):
        return format_html('<span class="export-state" data-state="{}">{}</span>', obj.state, obj.get_state_display())

    @admin.display(description="progress")
    def progress(self, obj):
        return format_html(
            '<progress class="export-progress" data-job="{}" max="100" value="{}" style="width:6em"></progress> {}%',
            obj.pk,
            obj.progress_percent,
            obj.progress_percent,
        )

    @admin.display(description="requested by", ordering="requested_by_label")
    def requester(self, obj):
        return obj.requested_by_label.removeprefix("user:")

    @admin.display(description="file")
    def download(self, obj):
        if obj.state != ExportState.DONE or not obj.file_name:
            return "-"
        return format_html(
            '<a class="export-download" href="{}">download</a>',
            reverse("admin:delivery_exportjob_download", args=[obj.pk]),
        )

    def get_urls(self):
        own = [
            path(
                "<int:pk>/download/", self.admin_site.admin_view(self.download_view), name="delivery_exportjob_download"
            ),
            path(
                "<int:pk>/progress/", self.admin_site.admin_view(self.progress_view), name="delivery_exportjob_progress"
            ),
        ]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ExportRequestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                job = request_export(
                    kind=form.cleaned_data["kind"],
                    fmt=form.cleaned_data["format"],
                    filters=form.filters(),
                    user=request.user,
                    ip_address=request.META.get("REMOTE_ADDR"),
                    reason=form.cleaned_data["reason"],
                    background=True if form.cleaned_data["background"] else None,
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                if job.background:
                    messages.info(request, f"Export {job.pk} runs in the background (~{job.estimated_rows:,} rows).")
                elif job.rows_written == 0:
                    # An empty file is still recorded (proof of a nil answer); say why it is empty.
                    explained = explain_empty_export(kind=job.kind, filters=job.filters)
                    messages.warning(request, f"Export {job.pk} is empty. {explained}")
                else:
                    messages.success(request, f"Export {job.pk} is ready: {job.rows_written:,} rows.")
                return redirect("admin:delivery_exportjob_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "New export",
            "form": form,
            "opts": self.model._meta,
            "full_numbers": request.user.has_perm("delivery.view_full_number"),
        }
        return TemplateResponse(request, "admin/delivery/exportjob/request.html", context)

    def _check_download(self, request, job: ExportJob) -> None:
        user = request.user
        needed = "delivery.export_send_log" if job.kind == ExportKind.SEND_LOG else "delivery.export_operation_records"
        if not user.has_perm(needed):
            raise PermissionDenied
        if job.requested_by_id != user.pk and not user.is_superuser:
            raise PermissionDenied
        if job.full_numbers and not user.has_perm("delivery.view_full_number"):
            raise PermissionDenied

    def download_view(self, request, pk):
        job = get_object_or_404(ExportJob, pk=pk)
        self._check_download(request, job)
        try:
            handle = open_export_file(job)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("admin:delivery_exportjob_changelist")
        record_operation(actor=admin_actor(request), action="export.download", obj=job, after={"sha256": job.sha256})
        return FileResponse(handle, as_attachment=True, filename=job.file_name.rsplit("/", 1)[-1])

    def progress_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(ExportJob, pk=pk)
        return JsonResponse(
            {
                "id": job.pk,
                "state": job.state,
                "rows_written": job.rows_written,
                "estimated_rows": job.estimated_rows,
                "percent": job.progress_percent,
            }
        )


class ErasureRequestForm(forms.ModelForm):
    class Meta:
        model = ErasureRequest
        fields = ["tenant", "number", "reason"]


@admin.register(ErasureRequest)
class ErasureRequestAdmin(admin.ModelAdmin):
    """R-AUD-4: erasure of a recipient's data at one tenant, after the retention minimum."""

    list_display = [
        "id",
        "tenant",
        "state",
        "not_before",
        "rows_anonymised",
        "requested_by_label",
        "created_at",
        "completed_at",
    ]
    list_filter = ["state"]
    search_fields = ["tenant__name", "number_hash"]
    actions = ["process_now"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ErasureRequestForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ErasureRequest._meta.fields] if obj is not None else []

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            created = request_erasure(
                tenant=form.cleaned_data["tenant"],
                number=form.cleaned_data["number"],
                actor=admin_actor(request),
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            raise _AbortSave from exc
        obj.pk = created.pk
        if created.not_before:
            messages.warning(request, f"Younger rows wait until {created.not_before:%Y-%m-%d %H:%M} (R-AUD-1 minimum).")

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except _AbortSave:
            return redirect(request.path)

    @admin.action(description="Process selected requests now", permissions=["add"])
    def process_now(self, request, queryset):
        for erasure in queryset:
            process_erasure(erasure_id=erasure.pk, actor=admin_actor(request))
        messages.success(request, f"Processed {queryset.count()} request(s).")


# --- the operators' dashboard: /admin/dashboard/ (R-BIL-7) -----------------------------------


class BreakdownForm(forms.Form):
    """The dashboard's per-tenant / platform-wide breakdown (R-BIL-7)."""

    days = forms.IntegerField(min_value=1, max_value=366, initial=14, required=False)
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.exclude(kind=TenantKind.PLATFORM).order_by("name"),
        required=False,
        empty_label="every tenant",
    )
    group_by = forms.ChoiceField(
        choices=[(g, g) for g in ("day", "hour", "type", "status", "channel", "carrier", "country", "tenant")],
        initial="tenant",
        required=False,
    )


def dashboard_view(request):
    if not (request.user.has_perm("tenants.view_operationrecord") or request.user.has_perm("delivery.view_exportjob")):
        raise PermissionDenied
    form = BreakdownForm(request.GET or None)
    # An invalid choice is shown on the form (with the default period), never silently replaced.
    options = form.cleaned_data if form.is_bound and form.is_valid() else {}
    days = options.get("days") or 14
    data = dashboard_data(days=days)
    readable_dashboard(data)
    now = timezone.now()
    tenant = options.get("tenant")
    breakdown = send_stats(
        tenants=[tenant]
        if tenant
        else list(Tenant.objects.exclude(kind=TenantKind.PLATFORM).exclude(schema_name="public")),
        date_from=now - timedelta(days=days),
        date_to=now,
        group_by=options.get("group_by") or "tenant",
    )
    breakdown["groups"] = readable_groups(breakdown["groups"], breakdown["group_by"])
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "work": todays_work(user=request.user),
        "data": data,
        "form": form,
        "breakdown": breakdown,
        "breakdown_tenant": tenant,
        "chart_data": json.loads(json.dumps(data, default=str)),
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
