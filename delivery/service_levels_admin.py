"""Operator admin for service levels and incidents (R-DLV-8). Writes call delivery.service_levels,
which records each one in the operation trail; closing and compensating have their own
permissions (delivery.close_incident, delivery.compensate_incident)."""

from django import forms
from django.contrib import admin

from tenants.admin import admin_actor
from tenants.agreements_admin import ServiceAdmin
from tenants.models import Tenant, TenantKind

from . import service_levels
from .models import Incident, IncidentCause, IncidentCompensation, IncidentState, ServiceLevelTarget


class TargetForm(forms.ModelForm):
    class Meta:
        model = ServiceLevelTarget
        fields = list(service_levels.TARGET_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = Tenant.objects.exclude(kind=TenantKind.PLATFORM)


@admin.register(ServiceLevelTarget)
class ServiceLevelTargetAdmin(ServiceAdmin):
    form = TargetForm
    list_display = [
        "name",
        "channel",
        "tenant",
        "min_delivery_rate",
        "max_latency_seconds",
        "latency_percentile",
        "window_minutes",
        "enabled",
        "verdict",
        "breached_since",
        "last_evaluated_at",
    ]
    list_filter = ["enabled", "channel"]
    search_fields = ["name", "tenant__name"]
    readonly_fields = ["last_evaluated_at", "last_result", "breached_since", "created_by_label", "created_at"]

    @admin.display(description="last verdict")
    def verdict(self, obj):
        result = obj.last_result or {}
        return f"{result.get('verdict', '-')} ({result.get('delivery_rate')}%, {result.get('latency')} s)"

    def save_with_service(self, request, obj, form, change):
        data = {name: form.cleaned_data.get(name) for name in service_levels.TARGET_FIELDS}
        if change:
            return service_levels.update_target(
                target=ServiceLevelTarget.objects.get(pk=obj.pk), changes=data, actor=admin_actor(request)
            )
        return service_levels.create_target(actor=admin_actor(request), **data)


class IncidentOpenForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = ["title", "started_at", "cause", "channels", "tenants", "impact"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenants"].queryset = Tenant.objects.exclude(kind=TenantKind.PLATFORM)


class IncidentCloseForm(forms.ModelForm):
    resolution_text = forms.CharField(label="Resolution", widget=forms.Textarea(attrs={"rows": 3}))
    impact_text = forms.CharField(
        label="Impact",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="empty: keep the recorded one",
    )
    cause_choice = forms.ChoiceField(label="Cause", choices=IncidentCause.choices)
    ended_at_value = forms.DateTimeField(label="Ended at", required=False, help_text="empty: now")

    class Meta:
        model = Incident
        fields = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cause_choice"].initial = self.instance.cause


@admin.register(Incident)
class IncidentAdmin(ServiceAdmin):
    """Incidents (R-DLV-8): opened by a breached target or here; closed here (recovery notice)."""

    list_display = ["id", "title", "state", "cause", "started_at", "recovered_at", "ended_at", "opened_by_label"]
    list_filter = ["state", "cause"]
    search_fields = ["title", "impact"]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = IncidentOpenForm if obj is None else IncidentCloseForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return IncidentOpenForm.Meta.fields
        readonly = [f.name for f in Incident._meta.fields] + ["affected_tenants", "affected_channels", "compensation"]
        closable = obj.state == IncidentState.OPEN and request.user.has_perm("delivery.close_incident")
        return readonly + (["resolution_text", "impact_text", "cause_choice", "ended_at_value"] if closable else [])

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [f.name for f in Incident._meta.fields] + ["affected_tenants", "affected_channels", "compensation"]

    @admin.display(description="affected tenants")
    def affected_tenants(self, obj):
        return ", ".join(str(t) for t in obj.tenants.all()) or "-"

    @admin.display(description="channels")
    def affected_channels(self, obj):
        return ", ".join(c.name for c in obj.channels.all()) or "-"

    @admin.display(description="compensation")
    def compensation(self, obj):
        return "; ".join(f"{c.tenant}: {c.amount} (ledger {c.ledger_entry_id})" for c in obj.compensations.all()) or "-"

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("delivery.close_incident")

    def save_with_service(self, request, obj, form, change):
        data, actor = form.cleaned_data, admin_actor(request)
        if change:
            return service_levels.close_incident(
                incident=Incident.objects.get(pk=obj.pk),
                actor=actor,
                resolution=data["resolution_text"],
                impact=data.get("impact_text") or "",
                cause=data["cause_choice"],
                ended_at=data.get("ended_at_value"),
            )
        return service_levels.open_incident(
            title=data["title"],
            started_at=data["started_at"],
            cause=data["cause"],
            channels=list(data.get("channels") or []),
            tenants=list(data.get("tenants") or []),
            impact=data.get("impact") or "",
            actor=actor,
        )


class CompensationForm(forms.ModelForm):
    class Meta:
        model = IncidentCompensation
        fields = ["incident", "tenant", "amount", "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["incident"].queryset = Incident.objects.filter(cause=IncidentCause.PLATFORM)
        self.fields["amount"].help_text = "micro-units: 1 CNY = 1,000,000"


@admin.register(IncidentCompensation)
class IncidentCompensationAdmin(ServiceAdmin):
    """Credits for the platform's own faults (a billing ledger entry each, R-DLV-8)."""

    form = CompensationForm
    list_display = ["id", "incident", "tenant", "amount", "ledger_entry_id", "created_by_label", "created_at"]
    search_fields = ["tenant__name", "reason"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [f.name for f in IncidentCompensation._meta.fields]

    def has_add_permission(self, request):
        return request.user.has_perm("delivery.compensate_incident")

    def has_change_permission(self, request, obj=None):
        return False

    def save_with_service(self, request, obj, form, change):
        data = form.cleaned_data
        return service_levels.compensate(
            incident=data["incident"],
            tenant=data["tenant"],
            amount=data["amount"],
            reason=data["reason"],
            actor=admin_actor(request),
        )
