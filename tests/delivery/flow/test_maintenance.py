"""R-DLV-6: maintenance is announced at least one working day ahead; tenants see notices."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from delivery.calendar import earliest_maintenance_start
from delivery.errors import MaintenanceNoticeTooShort
from delivery.maintenance import schedule_maintenance
from tenants.services import Actor

TZ = ZoneInfo("Asia/Shanghai")
OPERATOR = Actor.system("ops")


def test_friday_notice_reaches_monday(db):
    friday = datetime(2026, 11, 20, 10, 0, tzinfo=TZ)
    assert earliest_maintenance_start(now=friday) == datetime(2026, 11, 23, 10, 0, tzinfo=TZ)


def test_tuesday_notice_reaches_wednesday(db):
    tuesday = datetime(2026, 11, 24, 9, 30, tzinfo=TZ)
    assert earliest_maintenance_start(now=tuesday) == datetime(2026, 11, 25, 9, 30, tzinfo=TZ)


def test_maintenance_with_short_notice_is_refused_R_DLV_6(make_channel):
    friday = datetime(2026, 11, 20, 10, 0, tzinfo=TZ)
    saturday_night = datetime(2026, 11, 21, 23, 0, tzinfo=TZ)
    with pytest.raises(MaintenanceNoticeTooShort):
        schedule_maintenance(
            channel=make_channel(),
            starts_at=saturday_night,
            ends_at=saturday_night + timedelta(hours=2),
            notice="upgrade",
            actor=OPERATOR,
            now=friday,
        )


def test_maintenance_one_working_day_ahead_is_accepted_and_recorded(make_channel):
    from tenants.models import OperationRecord

    friday = datetime(2026, 11, 20, 10, 0, tzinfo=TZ)
    monday = datetime(2026, 11, 23, 22, 0, tzinfo=TZ)
    item = schedule_maintenance(
        channel=make_channel(),
        starts_at=monday,
        ends_at=monday + timedelta(hours=2),
        notice="SMSC upgrade",
        actor=OPERATOR,
        now=friday,
    )
    assert item.pk
    assert OperationRecord.objects.filter(action="delivery.schedule_maintenance", object_id=str(item.pk)).exists()


def test_tenants_see_maintenance_notices(client_a, make_channel):
    # From the earliest allowed start (a fixed "+3 days" fell short on Fridays by the time the
    # service looked at the clock, and would before any holiday of 3+ days).
    start = earliest_maintenance_start() + timedelta(hours=1)
    schedule_maintenance(
        channel=make_channel(name="cm-north"),
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        notice="China Mobile north upgrade",
        actor=OPERATOR,
    )
    response = client_a.get("/api/v1/maintenance")
    assert response.status_code == 200
    notices = response.json()["results"]
    assert any(n["channel"] == "cm-north" and n["notice"] == "China Mobile north upgrade" for n in notices)
    assert "password" not in str(notices)
