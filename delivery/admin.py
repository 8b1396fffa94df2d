"""Operator admin for channels, routes, prefix tables, maintenance, the public-holiday calendar,
held messages and callbacks (R-DLV-2/6, R-CMP-3/8 holds).

Writes go through services (operation trail); the channel password is never listed or shown.
"""

from collections import defaultdict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from import_export.admin import ImportExportModelAdmin

from smsplatform import crypto
from smsplatform.errors import DomainError
from tenants.admin_support import admin_actor
from tenants.models import Tenant
from tenants.selectors import customer_tenants

from . import calendar, callbacks, channels, errors, held, maintenance
from .models import (
    CallbackDelivery,
    CallbackState,
    CarrierPrefix,
    Channel,
    HeldMessageReview,
    Maintenance,
    PendingReceipt,
    ProvincePrefix,
    PublicHoliday,
    Route,
    TenantNumber,
)
from .resources import PublicHolidayResource


class ChannelForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="leave empty to keep the current password",
    )

    class Meta:
        model = Channel
        fields = [
            "name",
            "host",
            "port",
            "system_id",
            "password",
            "system_type",
            "source_addr",
            "bind_count",
            "max_binds",
            "bind_mode",
            "tps_limit",
            "window_size",
            "receipt_time_zone",
            "receipt_id_match",
            "query_sm_enabled",
            "enabled",
        ]

    def clean_receipt_time_zone(self):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        value = self.cleaned_data.get("receipt_time_zone") or ""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise forms.ValidationError("An IANA time zone such as Asia/Shanghai.") from exc
        return value

    def clean_password(self):
        value = self.cleaned_data.get("password")
        if not value and self.instance.pk:
            return Channel.objects.get(pk=self.instance.pk).password
        if not value:
            raise forms.ValidationError("A password is required for a new channel.")
        return crypto.encrypt_secret(value)


class RouteInline(admin.TabularInline):
    model = Route
    extra = 0
    fields = ["name", "message_type", "country", "carrier", "province", "priority", "weight", "enabled"]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = [
        "name",
        "state",
        "binds",
        "submits",
        "queue",
        "rate",
        "error",
        "host",
        "port",
        "system_id",
        "window_size",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "host", "system_id"]
    readonly_fields = ["live", "down_until", "last_error", "created_at"]
    inlines = [RouteInline]

    # --- live state (R-DLV-3), from delivery.channel_live -----------------------------------------

    def _live(self, obj):
        from .channel_live import channel_live

        cached = getattr(obj, "_live_state", None)
        if cached is None:
            cached = obj._live_state = channel_live(obj)
        return cached

    @admin.display(description="state")
    def state(self, obj):
        if not obj.enabled:
            return "disabled"
        if self._live(obj).down:
            until = timezone.localtime(obj.down_until).strftime("%H:%M:%S")
            return format_html('<strong class="channel-down">down until {}</strong>', until)
        return "up"

    @admin.display(description="binds up")
    def binds(self, obj):
        live = self._live(obj)
        return "unknown" if live.binds_up is None else f"{live.binds_up} / {obj.bind_count}"

    @admin.display(description="submits/s (1 min)")
    def submits(self, obj):
        value = self._live(obj).submits_per_second
        return "unknown" if value is None else value

    @admin.display(description="queued")
    def queue(self, obj):
        value = self._live(obj).queue_depth
        return "unknown" if value is None else value

    @admin.display(description="rate now / TPS limit")
    def rate(self, obj):
        live = self._live(obj)
        limit = f"{obj.tps_limit}/s" if obj.tps_limit else "no limit"
        return f"{live.current_rate:g}/s of {limit}" if live.current_rate else limit

    @admin.display(description="last error")
    def error(self, obj):
        return Truncator(obj.last_error).chars(60) if obj.last_error else "–"

    @admin.display(description="live state")
    def live(self, obj):
        if obj.pk is None:
            return "-"
        return format_html(
            '<span id="channel-live">state: {} · binds up: {} · submits/s over the last minute: {} · queued: {} · '
            "rate now / TPS limit: {}</span>",
            self.state(obj),
            self.binds(obj),
            self.submits(obj),
            self.queue(obj),
            self.rate(obj),
        )

    def save_model(self, request, obj, form, change):
        channels.save_channel(channel=obj, actor=admin_actor(request), changed=list(form.changed_data))


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "channel",
        "message_type",
        "country",
        "carrier",
        "province",
        "priority",
        "weight",
        "enabled",
    ]
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
                raise forms.ValidationError(errors.InvalidMaintenanceWindow.default_message)
            earliest = calendar.earliest_maintenance_start()
            if starts < earliest:
                raise forms.ValidationError(
                    f"{errors.MaintenanceNoticeTooShort.default_message} Earliest start: {earliest:%Y-%m-%d %H:%M}."
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
        item = maintenance.schedule_maintenance(
            channel=obj.channel,
            starts_at=obj.starts_at,
            ends_at=obj.ends_at,
            notice=obj.notice,
            actor=admin_actor(request),
        )
        obj.pk = item.pk

    @admin.action(description="Cancel the selected maintenance")
    def cancel_selected(self, request, queryset):
        for item in queryset:
            maintenance.cancel_maintenance(maintenance=item, actor=admin_actor(request), reason="cancelled in admin")


@admin.register(PublicHoliday)
class PublicHolidayAdmin(ImportExportModelAdmin):
    """R-DLV-6 working days: holidays and make-up working days (调休); import/export by date."""

    resource_classes = [PublicHolidayResource]
    list_display = ["date", "weekday", "name", "is_makeup_workday", "note"]
    list_filter = ["is_makeup_workday"]
    search_fields = ["name", "note"]
    date_hierarchy = "date"

    @admin.display(description="Weekday")
    def weekday(self, obj):
        return obj.date.strftime("%a")

    def save_model(self, request, obj, form, change):
        calendar.save_public_holiday(holiday=obj, actor=admin_actor(request))

    def delete_model(self, request, obj):
        calendar.delete_public_holidays(days=[obj.date], actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        calendar.delete_public_holidays(days=list(queryset.values_list("date", flat=True)), actor=admin_actor(request))


@admin.register(HeldMessageReview)
class HeldMessageReviewAdmin(admin.ModelAdmin):
    """Held messages of every tenant on one page, with Release and Reject (R-CMP-3/8).

    Permission `delivery.review_held_messages` (reviewer role); each decision goes through
    delivery.held (release_held_messages / reject_held_messages), which record it."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("delivery.review_held_messages")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            self._decide(request)
            return redirect(request.get_full_path())  # back to the same filters
        from .message_lookup import held_messages

        tenant = request.GET.get("tenant", "")
        tenants = Tenant.objects.filter(pk__in=[t.pk for t in customer_tenants()]).order_by("name")
        context = {
            **self.admin_site.each_context(request),
            "title": "Held messages",
            "groups": held_messages(
                tenant_ids=(int(tenant),) if tenant.isdigit() else (),
                q=request.GET.get("q", ""),
                why=request.GET.get("why", ""),
            ),
            "tenants": tenants,
            "filters": {"tenant": tenant, "q": request.GET.get("q", ""), "why": request.GET.get("why", "")},
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/delivery/held_messages.html", context)

    def _decide(self, request) -> None:
        operation = request.POST.get("operation")
        per_tenant: dict[int, list[int]] = defaultdict(list)
        for value in request.POST.getlist("selected"):
            tenant_id, _, message_id = value.partition(":")
            if tenant_id.isdigit() and message_id.isdigit():
                per_tenant[int(tenant_id)].append(int(message_id))
        if operation not in ("release", "reject") or not per_tenant:
            messages.error(request, "Select messages, then Release or Reject.")
            return
        reason = (request.POST.get("reason") or "").strip()
        if operation == "reject" and not reason:
            messages.error(request, "A reason is required to reject.")
            return
        done = 0
        for tenant in Tenant.objects.filter(pk__in=list(per_tenant)).order_by("pk"):
            ids = per_tenant[tenant.pk]
            try:
                if operation == "release":
                    done += held.release_held_messages(tenant=tenant, message_ids=ids, actor=admin_actor(request))
                else:
                    done += held.reject_held_messages(
                        tenant=tenant, message_ids=ids, actor=admin_actor(request), reason=reason
                    )
            except DomainError as exc:
                messages.error(request, f"{tenant.name}: {exc.message}")
        messages.success(request, f"{'Released' if operation == 'release' else 'Rejected'} {done} message(s).")


@admin.register(TenantNumber)
class TenantNumberAdmin(admin.ModelAdmin):
    list_display = ["extension", "tenant", "created_at"]
    search_fields = ["extension", "tenant__name"]
    autocomplete_fields = ["tenant"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        number = channels.assign_tenant_number(tenant=obj.tenant, extension=obj.extension, actor=admin_actor(request))
        obj.pk = number.pk


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(admin.ModelAdmin):
    """Callbacks that keep failing are visible here (state failed) and can be retried."""

    list_display = [
        "id",
        "tenant",
        "event",
        "url",
        "state",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
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
            callbacks.retry_callback(callback=item, actor=admin_actor(request))


@admin.register(PendingReceipt)
class PendingReceiptAdmin(admin.ModelAdmin):
    list_display = ["carrier_message_id", "channel", "stat", "received_at", "applied_at"]
    list_filter = ["stat", "channel"]
    search_fields = ["carrier_message_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# Admin classes in their own modules: the cross-tenant Message admin, R-DLV-8 service levels, the
# send log's exports, trail, erasure requests and dashboard.
from . import admin_messages, admin_sendlog, service_levels_admin  # noqa: E402, F401
