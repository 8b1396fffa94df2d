"""Seed a few destination-country rules (R-CMP-9). Operators edit or import more in the admin.

Content rules (opt-out text, quiet hours, maximum segments) apply to every message to a country,
because international templates have no marketing sub-type; the seeds therefore set only rules
that bind all A2P traffic, and the notes say what a marketing-only platform would add.
"""

from django.db import migrations


RULES = [
    {
        "country": "US",
        "name": "United States",
        "sender_rule": "numeric",
        "notes": "Carriers do not deliver alphanumeric sender IDs; A2P goes out from the platform's "
        "registered numbers (10DLC, toll-free, short codes). Marketing: TCPA calling hours "
        "08:00-21:00 recipient local time and STOP opt-out.",
    },
    {
        "country": "GB",
        "name": "United Kingdom",
        "sender_rule": "alphanumeric",
        "notes": "Alphanumeric sender IDs are delivered. Marketing (PECR) needs consent and a free opt-out.",
    },
    {
        "country": "FR",
        "name": "France",
        "sender_rule": "alphanumeric",
        "notes": "Commercial SMS are forbidden 20:00-08:00, on Sundays and public holidays, and carry "
        "'STOP au 36xxx': for marketing-only traffic set quiet hours 20:00-08:00 Europe/Paris "
        "and require opt-out text.",
    },
    {
        "country": "IN",
        "name": "India",
        "sender_rule": "registered",
        "notes": "Sender IDs (headers) and templates must be registered on the carriers' DLT platform "
        "(TRAI TCCCPR 2018); no promotional SMS 21:00-09:00 IST.",
    },
    {
        "country": "SG",
        "name": "Singapore",
        "sender_rule": "registered",
        "notes": "Alphanumeric sender IDs must be registered with the SMS Sender ID Registry (SSIR, "
        "IMDA); unregistered ones are labelled or blocked.",
    },
    {
        "country": "AE",
        "name": "United Arab Emirates",
        "sender_rule": "registered",
        "notes": "Sender IDs must be registered with the carriers (TDRA rules); promotional SMS not "
        "between 21:00 and 07:00.",
    },
    {
        "country": "KP",
        "name": "North Korea",
        "enabled": False,
        "sender_rule": "numeric",
        "notes": "No carrier route; sanctions.",
    },
]


def seed(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    CountryRule = apps.get_model("compliance", "CountryRule")
    for row in RULES:
        row = dict(row)
        CountryRule.objects.get_or_create(country=row.pop("country"), defaults=row)


def unseed(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    CountryRule = apps.get_model("compliance", "CountryRule")
    CountryRule.objects.filter(country__in=[r["country"] for r in RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("compliance", "0004_country_rules")]
    operations = [migrations.RunPython(seed, unseed)]
