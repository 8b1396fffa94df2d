"""Base classes the apps' admin modules share, so a read-only page or a delete through a service is
written once (the site's GuardedModelAdmin still mixes in on top, smsplatform.admin_site)."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services (ledgers, actions taken, counters): view, never edit here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows listed under their parent, never added, edited or deleted there: subclasses set model and fields."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class DeleteThroughServiceMixin:
    """Deleting one row or a selection calls one service that takes the ids (it records the
    operation, R-AUD-3): subclasses implement delete_rows(request, ids)."""

    def delete_rows(self, request, ids: list[int]) -> None:
        raise NotImplementedError

    def delete_model(self, request, obj):
        self.delete_rows(request, [obj.pk])

    def delete_queryset(self, request, queryset):
        self.delete_rows(request, list(queryset.values_list("pk", flat=True)))
