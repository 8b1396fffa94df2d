"""Operator admin for tenants, API keys and the operation trail. Every write calls a service."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from smsplatform.errors import DomainError

from . import services
from .models import ALLOWED_TRANSITIONS, ApiKey, OperationRecord, Tenant, TenantKind, TenantState


def admin_actor(request) -> services.Actor:
    return services.Actor.for_user(request.user, ip_address=request.META.get("REMOTE_ADDR"))


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


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "schema_name", "kind", "state", "licence_number", "created_at", "last_activity_at"]
    list_filter = ["state", "kind"]
    search_fields = ["name", "licence_number", "schema_name", "contact_email", "contact_phone"]
    readonly_fields = ["schema_name", "state", "state_reason", "state_changed_at", "created_at", "last_activity_at", "actions_links"]
    inlines = [ApiKeyInline]
    fieldsets = [
        ("Real-name profile (R-TEN-1)", {"fields": ["name", "kind", "licence_number", "contact_name", "contact_phone", "contact_email"]}),
        ("State (R-TEN-3)", {"fields": ["state", "state_reason", "state_changed_at", "actions_links"]}),
        ("Record", {"fields": ["schema_name", "created_at", "last_activity_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(kind=TenantKind.PLATFORM)

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
                services.update_tenant_profile(
                    tenant=Tenant.objects.get(pk=obj.pk),
                    changes={field: form.cleaned_data[field] for field in form.changed_data},
                    actor=admin_actor(request),
                )
            else:
                created = services.register_tenant(
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

    def get_urls(self):
        own = [
            path("<int:pk>/state/", self.admin_site.admin_view(self.change_state_view), name="tenants_tenant_change_state"),
            path("<int:pk>/issue-key/", self.admin_site.admin_view(self.issue_key_view), name="tenants_tenant_issue_key"),
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
                    tenant=tenant, to_state=form.cleaned_data["to_state"], reason=form.cleaned_data["reason"],
                    actor=admin_actor(request),
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"{tenant.name} is now {tenant.state}.")
                return redirect("admin:tenants_tenant_change", pk)
        context = {**self.admin_site.each_context(request), "title": f"Change state of {tenant.name}",
                   "tenant": tenant, "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/tenants/tenant/change_state.html", context)

    def issue_key_view(self, request, pk):
        if not request.user.has_perm("tenants.manage_api_keys"):
            raise PermissionDenied
        tenant = get_object_or_404(Tenant, pk=pk)
        if request.method != "POST":
            context = {**self.admin_site.each_context(request), "title": f"Issue an API key for {tenant.name}",
                       "tenant": tenant, "opts": self.model._meta}
            return TemplateResponse(request, "admin/tenants/tenant/issue_key.html", context)
        try:
            key, secret = services.issue_api_key(tenant=tenant, label=request.POST.get("label", ""), actor=admin_actor(request))
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("admin:tenants_tenant_change", pk)
        # Shown once, on this response only; never stored in clear (R-TEN-2).
        context = {**self.admin_site.each_context(request), "title": "API key issued", "tenant": tenant,
                   "key": key, "secret": secret, "opts": self.model._meta}
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
class OperationRecordAdmin(admin.ModelAdmin):
    """Append-only (R-AUD-3): browsable, never edited."""

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
