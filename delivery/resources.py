"""django-import-export resources of delivery: the public-holiday calendar (R-DLV-6)."""

from import_export import resources

from .models import PublicHoliday


class PublicHolidayResource(resources.ModelResource):
    """CSV/XLSX columns date,name,is_makeup_workday,note; rows are matched on the date, so
    re-importing a year's official schedule updates it."""

    class Meta:
        model = PublicHoliday
        fields = ("date", "name", "is_makeup_workday", "note")
        import_id_fields = ("date",)
        skip_unchanged = True
        report_skipped = False

    def after_import(self, dataset, result, **kwargs):
        if kwargs.get("dry_run"):
            return
        from tenants.services import Actor, record_operation

        user = kwargs.get("user")
        actor = Actor.for_user(user) if user is not None else Actor.system("holiday-import")
        record_operation(
            actor=actor,
            action="delivery.public_holiday_import",
            after={"rows": len(dataset), "totals": dict(result.totals)},
        )
