"""Operator admin for tenants and API keys. Every write calls a service."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from smsplatform.errors import DomainError

from . import registration, services, term
from .admin_support import admin_actor
from .models import (
    ALLOWED_TRANSITIONS,
    ApiKey,
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


# The operation trail's admin (browse, export: R-AUD-3) is in delivery/admin_sendlog.py with the
# send log's other exports.


from . import after_termination_admin, agreements_admin  # noqa: E402, F401 - issue 18 admins (own modules)
