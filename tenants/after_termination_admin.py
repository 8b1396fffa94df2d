"""Admin for R-TEN-8 (and the R-TEN-6 registration-update duty, at the end): what became of each terminated tenant's data (read-only; the daily job
exports and deletes). Downloading the export needs tenants.download_termination_export and is
recorded in the operation trail."""

from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from . import registration_updates
from .admin_support import admin_actor
from .agreements_admin import ServiceAdmin
from .models import AfterTermination, RegistrationUpdateDuty
from .services import record_operation


@admin.register(AfterTermination)
class AfterTerminationAdmin(admin.ModelAdmin):
    list_display = ["tenant", "state", "terminated_at", "exported_at", "delete_after", "blocked_reason", "deleted_at"]
    list_filter = ["state"]
    search_fields = ["tenant__name", "tenant__schema_name"]
    readonly_fields = [*(f.name for f in AfterTermination._meta.fields), "download"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="export")
    def download(self, obj):
        if not obj.export_file or obj.state == "deleted":
            return "-"
        url = reverse("admin:tenants_aftertermination_download", args=[obj.pk])
        return format_html('<a href="{}">download</a>', url)

    def get_urls(self):
        return [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="tenants_aftertermination_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, pk):
        if not request.user.has_perm("tenants.download_termination_export"):
            raise PermissionDenied
        case = get_object_or_404(AfterTermination.objects.select_related("tenant"), pk=pk)
        file_path = Path(settings.MEDIA_ROOT) / case.export_file
        if not case.export_file or not file_path.is_file():
            raise Http404("No export file.")
        record_operation(actor=admin_actor(request), action="termination.export_download", tenant=case.tenant, obj=case)
        return FileResponse(file_path.open("rb"), as_attachment=True, filename=file_path.name)


# --- R-TEN-6: registration changes (kept here: one small admin, no module of its own) ---------


class RegistrationUpdateForm(forms.ModelForm):
    class Meta:
        model = RegistrationUpdateDuty
        fields = ["tenant", "changed_on", "note"]


@admin.register(RegistrationUpdateDuty)
class RegistrationUpdateDutyAdmin(ServiceAdmin):
    """Record a tenant's registration change: it has 10 working days to update its data."""

    form = RegistrationUpdateForm
    list_display = ["tenant", "changed_on", "source", "due_at", "reminded_at", "overdue_at", "fulfilled_at"]
    list_filter = ["source", ("fulfilled_at", admin.EmptyFieldListFilter)]
    search_fields = ["tenant__name"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [f.name for f in RegistrationUpdateDuty._meta.fields]

    def has_change_permission(self, request, obj=None):
        return False

    def save_with_service(self, request, obj, form, change):
        data = form.cleaned_data
        return registration_updates.open_update_duty(
            tenant=data["tenant"],
            changed_on=data["changed_on"],
            note=data.get("note") or "",
            actor=admin_actor(request),
        )
