"""The platform's admin site: least privilege and the change trail for every registered admin.

`PlatformAdminSite` is the default admin site (smsplatform.apps.PlatformAdminConfig), so every
`@admin.register(...)` in any app gets `GuardedModelAdmin` mixed in first, without the app's
admin.py knowing about it. What the mixin adds, on top of the admin's own checks (it never
widens them):

- import needs add + change on the model, export needs view (django-import-export alone lets
  every staff user in);
- an action that declares no `allowed_permissions` needs the model's change permission;
- recipient numbers stay masked for users without `delivery.view_full_number`: fields holding
  one are read-only for them (a masked value can never be saved back), exported cells are
  masked (the HTML itself is masked by smsplatform.middleware.AdminNumberMaskingMiddleware);
- every add, change and delete made through the admin lands in the operation trail with actor,
  before and after, unless the service the admin called already recorded it (R-AUD-3).

`get_urls` adds the operators' dashboard (/admin/dashboard/, delivery.admin_sendlog.dashboard_view).

The role × model × operation matrix these rules produce is declared in smsplatform.admin_matrix
and checked by tests/security/test_admin_matrix.py. R-AUD-2, R-AUD-3, R-AUD-4.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.urls import path

from .masking import mask_value, may_see_full_numbers

# Field names whose values never go into the trail (secrets are encrypted or hashed at rest;
# a trail entry only says that they changed).
_SECRET_MARKERS = ("password", "secret", "token", "hash", "encrypted")


def _perm(opts, action: str) -> str:
    return f"{opts.app_label}.{get_permission_codename(action, opts)}"


def snapshot(obj: models.Model | None) -> dict[str, Any] | None:
    """The row's concrete fields as JSON-ready values; secrets replaced by a marker."""
    if obj is None:
        return None
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if isinstance(field, models.BinaryField):
            continue
        value = getattr(obj, field.attname)
        if any(marker in field.name for marker in _SECRET_MARKERS) and value:
            value = "<secret>"
        data[field.attname] = value
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder, default=str))


def _stored(obj: models.Model) -> models.Model | None:
    if obj.pk is None:
        return None
    return type(obj)._base_manager.filter(pk=obj.pk).first()


class GuardedModelAdmin(admin.ModelAdmin):
    """Mixed in front of every registered ModelAdmin by PlatformAdminSite (see module docstring)."""

    # Text fields that hold no recipient number even when one looks like it (a tenant's own
    # contact phone, say) can be listed by an admin; nothing needs to so far.
    unmasked_fields: tuple[str, ...] = ()

    # --- import / export (django-import-export) ---------------------------------------------

    def has_import_permission(self, request) -> bool:
        opts = self.opts
        user = request.user
        if not (user.has_perm(_perm(opts, "add")) and user.has_perm(_perm(opts, "change"))):
            return False
        parent = getattr(super(), "has_import_permission", None)
        return parent(request) if parent else False

    def has_export_permission(self, request) -> bool:
        if not admin.ModelAdmin.has_view_permission(self, request):
            return False
        parent = getattr(super(), "has_export_permission", None)
        return parent(request) if parent else False

    def get_data_for_export(self, request, queryset, **kwargs):
        dataset = super().get_data_for_export(request, queryset, **kwargs)
        if may_see_full_numbers(request.user):
            return dataset
        # Binary formats (XLSX) never pass the HTML masking middleware: mask the cells here.
        masked = [tuple(mask_value(cell) for cell in row) for row in dataset]
        headers = dataset.headers
        dataset.wipe()
        dataset.headers = headers
        for row in masked:
            dataset.append(row)
        return dataset

    # --- actions ----------------------------------------------------------------------------

    def _filter_actions_by_permissions(self, request, actions):
        allowed = super()._filter_actions_by_permissions(request, actions)
        change = _perm(self.opts, "change")
        # An action that declares nothing is a write like any other: the model's change permission.
        return [a for a in allowed if hasattr(a[0], "allowed_permissions") or request.user.has_perm(change)]

    # --- masking ----------------------------------------------------------------------------

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is None or may_see_full_numbers(request.user):
            return fields
        for field in obj._meta.concrete_fields:
            if field.name in fields or field.name in self.unmasked_fields:
                continue
            value = getattr(obj, field.attname, None)
            if isinstance(value, str | dict | list) and mask_value(value) != value:
                fields.append(field.name)
        return fields

    # --- the trail (R-AUD-3) ----------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        before = snapshot(_stored(obj)) if change else None
        mark = _trail_mark()
        super().save_model(request, obj, form, change)
        self._trail(request, obj, "change" if change else "add", before=before, mark=mark)

    def delete_model(self, request, obj):
        before, pk = snapshot(obj), obj.pk
        mark = _trail_mark()
        super().delete_model(request, obj)
        self._trail(request, obj, "delete", before=before, mark=mark, pk=pk)

    def delete_queryset(self, request, queryset):
        rows = [(obj, obj.pk, snapshot(obj)) for obj in queryset]
        mark = _trail_mark()
        super().delete_queryset(request, queryset)
        for obj, pk, before in rows:
            self._trail(request, obj, "delete", before=before, mark=mark, pk=pk)

    def save_formset(self, request, form, formset, change):
        befores = {
            f.instance.pk: snapshot(_stored(f.instance))
            for f in formset.initial_forms
            if f.instance.pk is not None and f.has_changed()
        }
        mark = _trail_mark()
        super().save_formset(request, form, formset, change)
        for obj in getattr(formset, "new_objects", []):
            self._trail(request, obj, "add", before=None, mark=mark)
        for obj, _fields in getattr(formset, "changed_objects", []):
            self._trail(request, obj, "change", before=befores.get(obj.pk), mark=mark)
        for obj in getattr(formset, "deleted_objects", []):
            self._trail(request, obj, "delete", before=befores.get(obj.pk) or snapshot(obj), mark=mark)

    def _trail(self, request, obj, verb: str, *, before, mark: int, pk=None) -> None:
        from tenants.models import OperationRecord, Tenant
        from tenants.services import Actor, record_operation

        pk = pk if pk is not None else obj.pk
        if pk is None:
            return  # the admin decided not to save (a service refused it)
        name = type(obj).__name__
        if OperationRecord.objects.filter(pk__gt=mark, object_type=name, object_id=str(pk)).exists():
            return  # the service the admin called recorded it already
        after = None if verb == "delete" else snapshot(_stored(obj))
        if verb == "change" and before == after:
            return
        tenant = obj if isinstance(obj, Tenant) else getattr(obj, "tenant", None)
        if verb == "delete" and not isinstance(tenant, Tenant):
            tenant = None
        record_operation(
            actor=Actor.for_user(request.user, ip_address=request.META.get("REMOTE_ADDR")),
            action=f"admin.{obj._meta.label_lower}.{verb}",
            tenant=tenant if isinstance(tenant, Tenant) and tenant.pk else None,
            obj=_Ref(name, pk),
            before=before,
            after=after,
        )


def _Ref(name: str, pk):  # noqa: N802 - builds a stand-in object
    """Stands in for a (maybe deleted) row in record_operation, which reads the class name and pk."""
    return type(name, (), {"pk": pk})()


def _trail_mark() -> int:
    from tenants.models import OperationRecord

    return OperationRecord.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


class PlatformAdminSite(admin.AdminSite):
    site_header = "SMS platform console"
    site_title = "SMS platform"
    index_title = "Today's work"
    site_url = "/api/docs/"  # "View site": the customer API reference (there is no public web site)

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, GuardedModelAdmin):
            admin_class = type(
                admin_class.__name__,
                (GuardedModelAdmin, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__},
            )
        return super().register(model_or_iterable, admin_class, **options)

    def get_urls(self):
        # The operators' dashboard (R-BIL-7) joins the site's own URLs, behind the admin login.
        # Imported here, not at the top: the site is built while apps load, before models exist.
        from delivery.admin_sendlog import dashboard_view

        return [path("dashboard/", self.admin_view(dashboard_view), name="dashboard"), *super().get_urls()]
