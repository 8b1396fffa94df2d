"""Operator admin for channels, routes, prefix tables, maintenance and callbacks (R-DLV-2/6).

Writes go through services (operation trail); the channel password is never listed or shown.
"""

from django import forms
from django.contrib import admin

from tenants.admin import admin_actor

from . import services
from .models import (
    CallbackDelivery,
    CallbackState,
    CarrierPrefix,
    Channel,
    Maintenance,
    PendingReceipt,
    ProvincePrefix,
    Route,
    TenantNumber,
)


class ChannelForm(forms.ModelForm):
    password = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                               help_text="leave empty to keep the current password")

    class Meta:
        model = Channel
        fields = ["name", "host", "port", "system_id", "password", "system_type", "source_addr", "bind_count", "tps_limit", "window_size", "enabled"]

    def clean_password(self):
        value = self.cleaned_data.get("password")
        if not value and self.instance.pk:
            return Channel.objects.get(pk=self.instance.pk).password
        if not value:
            raise forms.ValidationError("A password is required for a new channel.")
        return services.encrypt_secret(value)


class RouteInline(admin.TabularInline):
    model = Route
    extra = 0
    fields = ["name", "message_type", "country", "carrier", "province", "priority", "weight", "enabled"]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "host", "port", "system_id", "bind_count", "tps_limit", "window_size", "enabled", "down_until"]
    list_filter = ["enabled"]
    search_fields = ["name", "host", "system_id"]
    readonly_fields = ["down_until", "last_error", "created_at"]
    inlines = [RouteInline]

    def save_model(self, request, obj, form, change):
        services.save_channel(channel=obj, actor=admin_actor(request), changed=list(form.changed_data))


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = ["name", "channel", "message_type", "country", "carrier", "province", "priority", "weight", "enabled"]
    list_filter = ["enabled", "message_type", "carrier", "channel"]
    list_editable = ["priority", "weight", "enabled"]


@admin.register(CarrierPrefix)
class CarrierPrefixAdmin(admin.ModelAdmin):
    list_display = ["prefix", "carrier"]
    list_filter = ["carrier"]
    search_fields = ["prefix"]


@admin.register(ProvincePrefix)
class ProvincePrefixAdmin(admin.ModelAdmin):
    list_display = ["prefix", "province", "city"]
    search_fields = ["prefix", "province", "city"]


class MaintenanceForm(forms.ModelForm):
    class Meta:
        model = Maintenance
        fields = ["channel", "starts_at", "ends_at", "notice"]

    def clean(self):
        # The same rule the service enforces (R-DLV-6), shown on the form instead of an error page.
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends:
            if ends <= starts:
                raise forms.ValidationError(services.InvalidMaintenanceWindow.default_message)
            earliest = services.earliest_maintenance_start()
            if starts < earliest:
                raise forms.ValidationError(
                    f"{services.MaintenanceNoticeTooShort.default_message} Earliest start: {earliest:%Y-%m-%d %H:%M}."
                )
        return data


@admin.register(Maintenance)
class MaintenanceAdmin(admin.ModelAdmin):
    form = MaintenanceForm
    list_display = ["channel", "starts_at", "ends_at", "created_by", "cancelled_at"]
    list_filter = ["channel"]
    actions = ["cancel_selected"]

    def get_readonly_fields(self, request, obj=None):
        return ["channel", "starts_at", "ends_at", "notice"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            return
        item = services.schedule_maintenance(
            channel=obj.channel, starts_at=obj.starts_at, ends_at=obj.ends_at, notice=obj.notice,
            actor=admin_actor(request),
        )
        obj.pk = item.pk

    @admin.action(description="Cancel the selected maintenance")
    def cancel_selected(self, request, queryset):
        for item in queryset:
            services.cancel_maintenance(maintenance=item, actor=admin_actor(request), reason="cancelled in admin")


@admin.register(TenantNumber)
class TenantNumberAdmin(admin.ModelAdmin):
    list_display = ["extension", "tenant", "created_at"]
    search_fields = ["extension", "tenant__name"]
    autocomplete_fields = ["tenant"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        number = services.assign_tenant_number(tenant=obj.tenant, extension=obj.extension, actor=admin_actor(request))
        obj.pk = number.pk


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(admin.ModelAdmin):
    """Callbacks that keep failing are visible here (state failed) and can be retried."""

    list_display = ["id", "tenant", "event", "url", "state", "attempts", "last_status_code", "next_attempt_at", "created_at"]
    list_filter = ["state", "event"]
    search_fields = ["url", "tenant__name"]
    readonly_fields = [f.name for f in CallbackDelivery._meta.fields]
    actions = ["retry_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry the selected callbacks")
    def retry_selected(self, request, queryset):
        for item in queryset.exclude(state=CallbackState.DELIVERED):
            services.retry_callback(callback=item, actor=admin_actor(request))


@admin.register(PendingReceipt)
class PendingReceiptAdmin(admin.ModelAdmin):
    list_display = ["carrier_message_id", "channel", "stat", "received_at", "applied_at"]
    list_filter = ["stat", "channel"]
    search_fields = ["carrier_message_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
