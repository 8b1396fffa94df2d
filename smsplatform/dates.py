"""Calendar arithmetic shared by the apps (no I/O): notice periods and service terms count months."""

from __future__ import annotations

import calendar
from datetime import datetime


def add_calendar_months(moment: datetime, months: int) -> datetime:
    """The same time `months` calendar months later (31 Jan + 1 month = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
