"""The operators' Message admin: look up any message of any tenant, read-only (R-AUD-1, R-DLV-4).

Messages live in the tenants' schemas, so this admin has its own list and detail views over
delivery.message_lookup (one UNION ALL query per page, keyset pages, no COUNT) instead of
Django's changelist, which would query a public table that does not exist. Numbers are masked
for people without `delivery.view_full_number` by the admin masking middleware; search by
recipient takes a whole number only (R-AUD-2: no ends-with oracle).
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from smsplatform.message_types import MessageType
from tenants.models import Tenant, TenantKind

from .message_lookup import MessageQuery, message_detail, parse_cursor, search_messages
from .models import Channel, Message, MessageStatus

PRESETS = {"today": 0, "7d": 6, "30d": 29}


class MessageSearchForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        help_text="message id, client ref, carrier message id, or a whole recipient number",
    )
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.exclude(kind=TenantKind.PLATFORM).exclude(schema_name="public").order_by("name"),
        required=False,
        empty_label="every tenant",
    )
    status = forms.MultipleChoiceField(choices=MessageStatus.choices, required=False)
    channel = forms.ModelChoiceField(queryset=Channel.objects.order_by("name"), required=False, empty_label="any")
    type = forms.ChoiceField(choices=[("", "any"), *MessageType.choices], required=False)
    date_from = forms.DateField(required=False, label="from", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="to", widget=forms.DateInput(attrs={"type": "date"}))
    request = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    preset = forms.ChoiceField(
        choices=[("", "—"), ("today", "today"), ("7d", "last 7 days"), ("30d", "last 30 days")],
        required=False,
        label="period",
    )

    def clean(self):
        data = super().clean()
        preset = data.get("preset")
        if preset:
            today = timezone.localdate()
            data["date_from"], data["date_to"] = today - timedelta(days=PRESETS[preset]), today
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("“from” must not be after “to”.")
        return data

    def query(self, before: str = "") -> MessageQuery:
        data = self.cleaned_data
        return MessageQuery(
            q=data.get("q") or "",
            tenant_ids=(data["tenant"].pk,) if data.get("tenant") else (),
            statuses=tuple(data.get("status") or ()),
            channel_id=data["channel"].pk if data.get("channel") else None,
            message_type=data.get("type") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            request_id=data.get("request"),
            before=parse_cursor(before) if before else None,
        )


class MessageAdmin(admin.ModelAdmin):
    """Read-only; `delivery.view_message` (every operator role: numbers stay masked unless the
    user holds view_full_number)."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("delivery.view_message")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        # Only these two: Django's change/history/delete views would query the public schema.
        view = self.admin_site.admin_view
        return [
            path("", view(self.list_view), name="delivery_message_changelist"),
            path("<int:tenant_id>/<int:message_id>/", view(self.detail_view), name="delivery_message_detail"),
        ]

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def list_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = MessageSearchForm(request.GET or None)
        rows, more, error = [], False, None
        if not form.is_bound or form.is_valid():
            if not form.is_bound:
                form = MessageSearchForm({})
                form.is_valid()
            rows, more = search_messages(query=form.query(request.GET.get("before", "")))
        else:
            error = "Correct the filters below."
        params = request.GET.copy()
        params.pop("before", None)
        older = None
        if more and rows:
            params["before"] = rows[-1].cursor
            older = f"?{params.urlencode()}"
        channels = dict(Channel.objects.values_list("pk", "name"))
        return TemplateResponse(
            request,
            "admin/delivery/message_list.html",
            self._context(
                request,
                title="Messages",
                form=form,
                rows=rows,
                older=older,
                first_page=bool(request.GET.get("before")),
                channels=channels,
                error=error,
                statuses=dict(MessageStatus.choices),
            ),
        )

    def detail_view(self, request, tenant_id: int, message_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        tenant = Tenant.objects.filter(pk=tenant_id).exclude(schema_name="public").first()
        detail = message_detail(tenant=tenant, message_id=message_id) if tenant else None
        if detail is None:
            raise Http404("No such message.")
        m = detail.message
        return TemplateResponse(
            request,
            "admin/delivery/message_detail.html",
            self._context(
                request,
                title=f"Message {m.pk} of {tenant.name}",
                d=detail,
                m=m,
                currency=detail.hold.account.currency if detail.hold else "CNY",
                batch_url=(f"{reverse('admin:delivery_message_changelist')}?tenant={tenant.pk}&request={m.request_id}"),
            ),
        )


admin.site.register(Message, MessageAdmin)
