"""R-AUD-1: the retention floor is six calendar months, not 180 days."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from delivery.sendlog.retention import earliest_purge, floor_cutoff, retention_cutoff

CN = ZoneInfo("Asia/Shanghai")


def at(y, m, d, h=12):
    return datetime(y, m, d, h, tzinfo=CN)


@pytest.mark.parametrize(
    ("created", "not_purged_on"),
    [
        (at(2025, 9, 2, 10), at(2026, 3, 1, 23)),  # 180 days would purge it on 1 Mar
        (at(2025, 9, 2, 10), at(2026, 3, 2, 23)),
        (at(2025, 8, 31, 23), at(2026, 2, 28, 23)),
        (at(2024, 8, 29, 1), at(2025, 2, 28, 23)),
        (at(2025, 12, 31, 1), at(2026, 6, 30, 23)),
        (at(2025, 3, 31, 1), at(2025, 9, 30, 23)),
    ],
)
def test_r_aud_1_a_message_is_kept_six_calendar_months(settings, created, not_purged_on):
    settings.AUDIT_RETENTION_DAYS = 180
    assert created >= floor_cutoff(not_purged_on)
    assert created >= retention_cutoff(now=not_purged_on)


def test_r_aud_1_the_floor_lets_it_go_the_day_after():
    assert at(2025, 9, 2, 10) < floor_cutoff(at(2026, 3, 3, 1))
    assert earliest_purge(at(2025, 9, 2, 10)) == datetime(2026, 3, 3, tzinfo=CN)
    assert earliest_purge(at(2025, 8, 31, 10)) == datetime(2026, 3, 1, tzinfo=CN)


def test_r_aud_1_a_longer_configured_retention_still_applies(settings):
    settings.AUDIT_RETENTION_DAYS = 400
    now = at(2026, 3, 3)
    assert retention_cutoff(now=now) < floor_cutoff(now)
