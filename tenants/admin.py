"""Operator admin for tenants, API keys and the operation trail. Every write calls a service."""

import hashlib
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ExportMixin

from delivery.sendlog import OperationRecordResource, record_inline_export
from smsplatform.errors import DomainError

from . import registration, services, term
from .admin_support import admin_actor
from .models import (
    ALLOWED_TRANSITIONS,
    ApiKey,
    ErasureRequest,
    ExportFormat,
    ExportJob,
    ExportKind,
    ExportState,
    OperationRecord,
    Tenant,
    TenantKind,
    TenantState,
)


class TenantCreationForm(forms.ModelForm):
    activate = forms.BooleanField(
        required=False, help_text="Real-name documents already reviewed: make the tenant active at once."
    )

    class Meta:
        model = Tenant
        fields = ["name", "kind", "licence_number", "contact_name", "contact_phone", "contact_email"]

    def clean_licence_number(self):
        value = (self.cleaned_data.get("licence_number") or "").strip()
        if not value:
            raise forms.ValidationError("A licence (or ID) number is required (R-TEN-1).")
        return value

    def validate_unique(self):
        # Uniqueness, including the "terminated licence never registers again" rule, is the
        # service's decision (it says which of the two applies).
        pass


class StateChangeForm(forms.Form):
    to_state = forms.ChoiceField(label="New state")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, current_state: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_state"].choices = [
            (state, TenantState(state).label) for state in sorted(ALLOWED_TRANSITIONS[current_state])
        ]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ["access_key_id", "label", "created_at", "created_by", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ServiceTermFilter(admin.SimpleListFilter):
    """R-TEN-5: tenants whose term ends soon, has ended, or whose end was announced."""

    title = "service term"
    parameter_name = "term"

    def lookups(self, request, model_admin):
        return [("30d", "ends within 30 days"), ("ended", "expired"), ("noticed", "end announced")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "30d":
            return queryset.filter(
                billing_account__service_expires_at__gt=now,
                billing_account__service_expires_at__lte=now + timedelta(days=30),
            )
        if self.value() == "ended":
            return queryset.filter(billing_account__service_expires_at__lte=now)
        if self.value() == "noticed":
            return queryset.filter(service_end_noticed_at__isnull=False)
        return queryset


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "schema_name",
        "kind",
        "state",
        "licence_number",
        "service_expires",
        "created_at",
        "last_activity_at",
    ]
    list_filter = ["state", "kind", ServiceTermFilter]
    actions = ["renew_term"]
    search_fields = ["name", "licence_number", "schema_name", "contact_email", "contact_phone"]
    readonly_fields = [
        "schema_name",
        "state",
        "state_reason",
        "state_changed_at",
        "created_at",
        "last_activity_at",
        "actions_links",
        "service_expires",
        "service_term_status",
        "service_end_cause",
        "service_end_noticed_at",
    ]
    inlines = [ApiKeyInline]
    fieldsets = [
        (
            "Real-name profile (R-TEN-1)",
            {"fields": ["name", "kind", "licence_number", "contact_name", "contact_phone", "contact_email"]},
        ),
        ("State (R-TEN-3)", {"fields": ["state", "state_reason", "state_changed_at", "actions_links"]}),
        (
            "Service term (R-TEN-5)",
            {"fields": ["service_expires", "service_term_status", "service_end_cause", "service_end_noticed_at"]},
        ),
        ("Record", {"fields": ["schema_name", "created_at", "last_activity_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(kind=TenantKind.PLATFORM).select_related("billing_account")

    @admin.display(description="service term ends", ordering="billing_account__service_expires_at")
    def service_expires(self, obj):
        account = getattr(obj, "billing_account", None)
        return account.service_expires_at if account and account.service_expires_at else "-"

    @admin.display(description="service term")
    def service_term_status(self, obj):
        if obj.pk is None:
            return "-"
        status = term.term_status(tenant=obj)
        if status.expires_at is None:
            return "not started (starts on activation)"
        parts = ["expired" if status.expired else "running"]
        if status.used_up:
            parts.append("bought messages used up")
        return ", ".join(parts)

    @admin.action(description="Renew the service term by one year (R-TEN-5)", permissions=["renew"])
    def renew_term(self, request, queryset):
        done = 0
        for tenant in queryset:
            try:
                term.renew_term(tenant=tenant, actor=admin_actor(request), reason="renewed by operator")
            except DomainError as exc:
                messages.error(request, f"{tenant.name}: {exc.message}")
                continue
            done += 1
        messages.success(request, f"Renewed {done} tenant(s) for one year.")

    def has_renew_permission(self, request):
        return request.user.has_perm("tenants.renew_service_term")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TenantCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": [*TenantCreationForm.Meta.fields, "activate"]})]
        return self.fieldsets

    def has_delete_permission(self, request, obj=None):
        return False  # tenants are terminated, never deleted (R-AUD-1)

    @admin.display(description="Operations")
    def actions_links(self, obj):
        if obj.pk is None:
            return "-"
        return format_html(
            '<a class="button" href="{}">Change state</a>&nbsp;<a class="button" href="{}">Issue API key</a>',
            reverse("admin:tenants_tenant_change_state", args=[obj.pk]),
            reverse("admin:tenants_tenant_issue_key", args=[obj.pk]),
        )

    def save_model(self, request, obj, form, change):
        try:
            if change:
                registration.update_tenant_profile(
                    tenant=Tenant.objects.get(pk=obj.pk),
                    changes={field: form.cleaned_data[field] for field in form.changed_data},
                    actor=admin_actor(request),
                )
            else:
                created = registration.register_tenant(
                    **{field: form.cleaned_data[field] for field in TenantCreationForm.Meta.fields},
                    activate=form.cleaned_data.get("activate", False),
                    actor=admin_actor(request),
                )
                obj.pk = created.pk
        except DomainError as exc:
            messages.error(request, exc.message)
            raise _AbortSave from exc

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except _AbortSave:
            return redirect(request.path)

    def save_related(self, request, form, formsets, change):
        pass  # inlines are read-only; keys change through the key views

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from .glance import tenant_glance

        tenant = Tenant.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        # At a glance (admin/tenants/tenant/change_form.html): links only to what this user may open.
        glance = tenant_glance(tenant=tenant, user=request.user) if tenant else []
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "glance": glance})

    def get_urls(self):
        own = [
            path(
                "<int:pk>/state/",
                self.admin_site.admin_view(self.change_state_view),
                name="tenants_tenant_change_state",
            ),
            path(
                "<int:pk>/issue-key/", self.admin_site.admin_view(self.issue_key_view), name="tenants_tenant_issue_key"
            ),
        ]
        return own + super().get_urls()

    def change_state_view(self, request, pk):
        if not request.user.has_perm("tenants.change_tenant_state"):
            raise PermissionDenied
        tenant = get_object_or_404(Tenant, pk=pk)
        form = StateChangeForm(request.POST or None, current_state=tenant.state)
        if request.method == "POST" and form.is_valid():
            try:
                services.change_tenant_state(
                    tenant=tenant,
                    to_state=form.cleaned_data["to_state"],
                    reason=form.cleaned_data["reason"],
                    actor=admin_actor(request),
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"{tenant.name} is now {tenant.state}.")
                return redirect("admin:tenants_tenant_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change state of {tenant.name}",
            "tenant": tenant,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/tenants/tenant/change_state.html", context)

    def issue_key_view(self, request, pk):
        if not request.user.has_perm("tenants.manage_api_keys"):
            raise PermissionDenied
        tenant = get_object_or_404(Tenant, pk=pk)
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "title": f"Issue an API key for {tenant.name}",
                "tenant": tenant,
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "admin/tenants/tenant/issue_key.html", context)
        try:
            key, secret = services.issue_api_key(
                tenant=tenant, label=request.POST.get("label", ""), actor=admin_actor(request)
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("admin:tenants_tenant_change", pk)
        # Shown once, on this response only; never stored in clear (R-TEN-2).
        context = {
            **self.admin_site.each_context(request),
            "title": "API key issued",
            "tenant": tenant,
            "key": key,
            "secret": secret,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/tenants/tenant/key_issued.html", context)


class _AbortSave(Exception):
    """A service refused the save; the message is already queued for the operator."""


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["access_key_id", "tenant", "label", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["access_key_id", "tenant__name", "label"]
    readonly_fields = [f.name for f in ApiKey._meta.fields if f.name not in {"secret_hash", "secret_encrypted"}]
    exclude = ["secret_hash", "secret_encrypted"]
    actions = ["revoke_keys"]

    def has_add_permission(self, request):
        return False  # keys are issued from the tenant page (the secret is shown once there)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected keys", permissions=["manage"])
    def revoke_keys(self, request, queryset):
        for key in queryset:
            services.revoke_api_key(key=key, actor=admin_actor(request), reason="revoked by operator")
        messages.success(request, f"Revoked {queryset.count()} key(s).")

    def has_manage_permission(self, request):
        return request.user.has_perm("tenants.manage_api_keys")


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
        return request.user.has_perm("tenants.export_operation_records")

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


# --- records and audit (issue 6) --------------------------------------------------------------


def _status_choices() -> list[tuple[str, str]]:
    try:
        from delivery.models import MessageStatus
    except ImportError:  # the send log model arrives with the delivery app
        return []
    return list(MessageStatus.choices)


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
    statuses = forms.MultipleChoiceField(choices=_status_choices, required=False)
    recipient = forms.CharField(required=False, max_length=32, help_text="full number or its ending")
    signature = forms.CharField(required=False, max_length=40)
    template = forms.CharField(required=False, max_length=40, help_text="template code")
    format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.CSV)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="the lawful request this answers")
    background = forms.BooleanField(required=False, help_text="run in the background even when small")

    def clean(self):
        from datetime import timedelta

        from django.utils import timezone

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
        from delivery.sendlog import describe_filters

        return describe_filters(kind=obj.kind, filters=obj.filters)

    @admin.display(description="outcome")
    def outcome(self, obj):
        from delivery.sendlog import explain_empty_export

        if obj.state == ExportState.DONE and obj.rows_written == 0:
            return explain_empty_export(kind=obj.kind, filters=obj.filters)
        if obj.state == ExportState.DONE:
            return f"{obj.rows_written:,} rows"
        if obj.state == ExportState.FAILED:
            return f"failed: {obj.error[:200]}"
        return f"{obj.get_state_display()}: {obj.progress_percent}% of ~{obj.estimated_rows:,} rows"

    class Media:
        js = ["tenants/export_progress.js"]

    def has_add_permission(self, request):
        user = request.user
        return user.has_perm("tenants.export_send_log") or user.has_perm("tenants.export_operation_records")

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
            reverse("admin:tenants_exportjob_download", args=[obj.pk]),
        )

    def get_urls(self):
        own = [
            path(
                "<int:pk>/download/", self.admin_site.admin_view(self.download_view), name="tenants_exportjob_download"
            ),
            path(
                "<int:pk>/progress/", self.admin_site.admin_view(self.progress_view), name="tenants_exportjob_progress"
            ),
        ]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        from delivery.sendlog import request_export

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
                from delivery.sendlog import explain_empty_export

                if job.background:
                    messages.info(request, f"Export {job.pk} runs in the background (~{job.estimated_rows:,} rows).")
                elif job.rows_written == 0:
                    # An empty file is still recorded (proof of a nil answer); say why it is empty.
                    explained = explain_empty_export(kind=job.kind, filters=job.filters)
                    messages.warning(request, f"Export {job.pk} is empty. {explained}")
                else:
                    messages.success(request, f"Export {job.pk} is ready: {job.rows_written:,} rows.")
                return redirect("admin:tenants_exportjob_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "New export",
            "form": form,
            "opts": self.model._meta,
            "full_numbers": request.user.has_perm("tenants.view_full_number"),
        }
        return TemplateResponse(request, "admin/tenants/exportjob/request.html", context)

    def _check_download(self, request, job: ExportJob) -> None:
        user = request.user
        needed = "tenants.export_send_log" if job.kind == ExportKind.SEND_LOG else "tenants.export_operation_records"
        if not user.has_perm(needed):
            raise PermissionDenied
        if job.requested_by_id != user.pk and not user.is_superuser:
            raise PermissionDenied
        if job.full_numbers and not user.has_perm("tenants.view_full_number"):
            raise PermissionDenied

    def download_view(self, request, pk):
        from django.http import FileResponse

        from delivery.sendlog import open_export_file

        job = get_object_or_404(ExportJob, pk=pk)
        self._check_download(request, job)
        try:
            handle = open_export_file(job)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("admin:tenants_exportjob_changelist")
        services.record_operation(
            actor=admin_actor(request), action="export.download", obj=job, after={"sha256": job.sha256}
        )
        return FileResponse(handle, as_attachment=True, filename=job.file_name.rsplit("/", 1)[-1])

    def progress_view(self, request, pk):
        from django.http import JsonResponse

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
        from delivery.retention import request_erasure

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
        from delivery.retention import process_erasure

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
    import json
    from datetime import timedelta

    from django.utils import timezone

    from delivery.stats import dashboard_data, readable_dashboard, readable_groups, send_stats
    from smsplatform.worklist import todays_work

    if not (request.user.has_perm("tenants.view_operationrecord") or request.user.has_perm("tenants.view_exportjob")):
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


_admin_site_get_urls = admin.site.get_urls


def _get_urls_with_dashboard():
    # The default AdminSite keeps its URLs in get_urls(); the dashboard joins them there (so it
    # sits behind the admin login) without another line in smsplatform/urls.py.
    return [path("dashboard/", admin.site.admin_view(dashboard_view), name="dashboard"), *_admin_site_get_urls()]


admin.site.get_urls = _get_urls_with_dashboard

from . import after_termination_admin, agreements_admin  # noqa: E402, F401 - issue 18 admins (own modules)
