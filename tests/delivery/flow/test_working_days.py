"""R-DLV-6: maintenance notice counts working days on the public-holiday calendar: holidays are
not working days, China's make-up weekend days (调休) are. The 2026 calendar is seeded by migration."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from delivery.calendar import add_working_days, earliest_maintenance_start
from delivery.errors import MaintenanceNoticeTooShort
from delivery.maintenance import schedule_maintenance
from delivery.models import PublicHoliday
from tenants.models import OperationRecord
from tenants.services import Actor

TZ = ZoneInfo("Asia/Shanghai")
OPERATOR = Actor.system("ops")


def test_2026_national_day_and_its_make_up_days_are_seeded(db):
    rows = dict(PublicHoliday.objects.filter(date__year=2026).values_list("date", "is_makeup_workday"))
    assert all(rows[date(2026, 10, d)] is False for d in range(1, 8))
    assert rows[date(2026, 9, 20)] is True
    assert rows[date(2026, 10, 10)] is True
    assert rows[date(2026, 2, 14)] is True
    assert rows[date(2026, 2, 28)] is True
    assert sum(1 for makeup in rows.values() if not makeup) == 33  # 3+9+3+5+3+3+7 holiday days


def test_maintenance_announced_the_day_before_a_holiday_starts_after_it_R_DLV_6(db, make_channel):
    eve = datetime(2026, 9, 30, 10, 0, tzinfo=TZ)  # Wednesday; 1–7 October is the National Day holiday
    assert earliest_maintenance_start(now=eve) == datetime(2026, 10, 8, 10, 0, tzinfo=TZ)
    holiday_night = datetime(2026, 10, 5, 22, 0, tzinfo=TZ)
    with pytest.raises(MaintenanceNoticeTooShort):
        schedule_maintenance(
            channel=make_channel(),
            starts_at=holiday_night,
            ends_at=holiday_night + timedelta(hours=2),
            notice="upgrade",
            actor=OPERATOR,
            now=eve,
        )
    after = datetime(2026, 10, 8, 22, 0, tzinfo=TZ)
    item = schedule_maintenance(
        channel=make_channel(),
        starts_at=after,
        ends_at=after + timedelta(hours=2),
        notice="upgrade",
        actor=OPERATOR,
        now=eve,
    )
    assert item.pk


def test_a_make_up_saturday_counts_as_a_working_day_R_DLV_6(db):
    friday = datetime(2026, 10, 9, 10, 0, tzinfo=TZ)  # Saturday 10 October 2026 is a working day (调休)
    assert earliest_maintenance_start(now=friday) == datetime(2026, 10, 10, 10, 0, tzinfo=TZ)


def test_a_make_up_sunday_counts_and_the_spring_festival_is_skipped_R_DLV_6(db):
    saturday = datetime(2026, 9, 19, 9, 0, tzinfo=TZ)
    assert add_working_days(saturday, 1) == datetime(2026, 9, 20, 9, 0, tzinfo=TZ)  # Sunday 调休
    friday = datetime(2026, 2, 13, 9, 0, tzinfo=TZ)
    # Sat 14 Feb works; 15–23 Feb is the Spring Festival; Tuesday 24 Feb is the next working day.
    assert add_working_days(friday, 2) == datetime(2026, 2, 24, 9, 0, tzinfo=TZ)


def test_operators_can_add_a_holiday_and_it_applies_at_once_R_DLV_6(db):
    tuesday = datetime(2027, 3, 2, 9, 0, tzinfo=TZ)
    assert add_working_days(tuesday, 1) == datetime(2027, 3, 3, 9, 0, tzinfo=TZ)
    PublicHoliday.objects.create(date=date(2027, 3, 3), name="test holiday")
    assert add_working_days(tuesday, 1) == datetime(2027, 3, 4, 9, 0, tzinfo=TZ)


def test_public_holidays_import_by_date_updates_and_is_recorded(client, operator_user):
    """Admin import (django-import-export): rows are matched on the date."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(operator_user)
    csv = (
        "date,name,is_makeup_workday,note\n2027-01-01,元旦 New Year's Day,0,import test\n2026-10-10,changed name,1,x\n"
    )
    page = client.post(
        "/admin/delivery/publicholiday/import/",
        {
            "format": "0",
            "import_file": SimpleUploadedFile("h.csv", csv.encode(), content_type="text/csv"),
            "resource": "0",
        },
    )
    assert page.status_code == 200, page.content.decode()[:2000]
    import re

    fields = dict(
        re.findall(
            r'name="(import_file_name|original_file_name|format|resource)"[^>]*value="([^"]*)"', page.content.decode()
        )
    )
    response = client.post("/admin/delivery/publicholiday/process_import/", fields)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert PublicHoliday.objects.get(date=date(2027, 1, 1)).is_makeup_workday is False
    assert PublicHoliday.objects.get(date=date(2026, 10, 10)).name == "changed name"
    assert OperationRecord.objects.filter(action="delivery.public_holiday_import").exists()
