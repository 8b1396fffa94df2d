"""Seed the 2026 Chinese public holidays and make-up working days (R-DLV-6).

Source: State Council notice on the 2026 holiday arrangements (国务院办公厅关于2026年部分节假日
安排的通知, Nov 2025, gov.cn/zhengce/content/202511/content_7047090.htm). Every day of each
holiday stretch is a row (weekend days inside included); 调休 days are make-up working days.
2027 is not seeded: operators import it (Public holidays › Import) once it is announced.
"""

from datetime import date, timedelta

from django.db import migrations

HOLIDAYS_2026 = [
    ("元旦 New Year's Day", date(2026, 1, 1), date(2026, 1, 3)),
    ("春节 Spring Festival", date(2026, 2, 15), date(2026, 2, 23)),
    ("清明节 Qingming", date(2026, 4, 4), date(2026, 4, 6)),
    ("劳动节 Labour Day", date(2026, 5, 1), date(2026, 5, 5)),
    ("端午节 Dragon Boat Festival", date(2026, 6, 19), date(2026, 6, 21)),
    ("中秋节 Mid-Autumn Festival", date(2026, 9, 25), date(2026, 9, 27)),
    ("国庆节 National Day", date(2026, 10, 1), date(2026, 10, 7)),
]
MAKEUP_WORKDAYS_2026 = [
    ("元旦调休 New Year make-up working day", date(2026, 1, 4)),
    ("春节调休 Spring Festival make-up working day", date(2026, 2, 14)),
    ("春节调休 Spring Festival make-up working day", date(2026, 2, 28)),
    ("劳动节调休 Labour Day make-up working day", date(2026, 5, 9)),
    ("国庆节调休 National Day make-up working day", date(2026, 9, 20)),
    ("国庆节调休 National Day make-up working day", date(2026, 10, 10)),
]
NOTE = "State Council 2026 holiday notice"


def rows():
    for name, first, last in HOLIDAYS_2026:
        day = first
        while day <= last:
            yield day, name, False
            day += timedelta(days=1)
    for name, day in MAKEUP_WORKDAYS_2026:
        yield day, name, True


def seed(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    PublicHoliday = apps.get_model("delivery", "PublicHoliday")
    for day, name, makeup in rows():
        PublicHoliday.objects.get_or_create(
            date=day, defaults={"name": name, "is_makeup_workday": makeup, "note": NOTE}
        )


def unseed(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    PublicHoliday = apps.get_model("delivery", "PublicHoliday")
    PublicHoliday.objects.filter(date__in=[day for day, _, _ in rows()], note=NOTE).delete()


class Migration(migrations.Migration):
    dependencies = [("delivery", "0003_public_holidays_and_held_review")]
    operations = [migrations.RunPython(seed, unseed)]
