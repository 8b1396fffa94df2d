"""Working days and public holidays (调休 make-up days included), and the earliest start a
maintenance notice may give (R-DLV-6). Scheduling maintenance is delivery/maintenance.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tenants.services import Actor, record_operation

from .models import PublicHoliday


def working_day_calendar(*, start: date, end: date) -> dict[date, bool]:
    """{day: is it a working day} for the public-holiday calendar rows in [start, end] (R-DLV-6)."""
    return dict(PublicHoliday.objects.filter(date__gte=start, date__lte=end).values_list("date", "is_makeup_workday"))


def is_working_day(day: date, calendar: dict[date, bool]) -> bool:
    """A calendar row decides (holiday → no, make-up day 调休 → yes); otherwise Monday–Friday."""
    if day in calendar:
        return calendar[day]
    return day.weekday() < 5


def add_working_days(moment: datetime, days: int) -> datetime:
    """`moment` moved forward by `days` working days, in local time: weekends and public holidays
    skipped, make-up working days (调休) counted (R-DLV-6). One query per 60 days looked at."""
    local = timezone.localtime(moment)
    window_end = local.date()
    calendar: dict[date, bool] = {}
    while days > 0:
        local += timedelta(days=1)
        if local.date() > window_end:
            # China's longest holiday stretch is 9 days; 60 days a query covers any real case in one.
            start, window_end = local.date(), local.date() + timedelta(days=60)
            calendar = working_day_calendar(start=start, end=window_end)
        if is_working_day(local.date(), calendar):
            days -= 1
    return local


def save_public_holiday(*, holiday: PublicHoliday, actor: Actor) -> PublicHoliday:
    """Create or change a calendar day (admin form); recorded (R-AUD-3)."""
    with transaction.atomic():
        created = holiday.pk is None
        holiday.save()
        record_operation(
            actor=actor,
            action="delivery.public_holiday_create" if created else "delivery.public_holiday_update",
            obj=holiday,
            after={"date": holiday.date.isoformat(), "name": holiday.name, "makeup": holiday.is_makeup_workday},
        )
    return holiday


def delete_public_holidays(*, days: list[date], actor: Actor) -> int:
    with transaction.atomic():
        deleted, _ = PublicHoliday.objects.filter(date__in=days).delete()
        record_operation(
            actor=actor, action="delivery.public_holiday_delete", after={"dates": [d.isoformat() for d in days]}
        )
    return deleted


def earliest_maintenance_start(*, now: datetime | None = None) -> datetime:
    """At least one working day's notice: the same time on the next working day."""
    return add_working_days(now or timezone.now(), 1)
