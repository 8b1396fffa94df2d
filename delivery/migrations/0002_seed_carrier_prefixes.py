"""Seed the Chinese mobile number prefixes (R-DLV-2). Operators edit them in the admin."""

from django.db import migrations

PREFIXES = {
    "china_mobile": "134 135 136 137 138 139 147 150 151 152 157 158 159 178 182 183 184 187 188 198",
    "china_unicom": "130 131 132 145 155 156 166 175 176 185 186",
    "china_telecom": "133 149 153 173 177 180 181 189 191 199",
}


def seed(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    CarrierPrefix = apps.get_model("delivery", "CarrierPrefix")
    for carrier, prefixes in PREFIXES.items():
        for prefix in prefixes.split():
            CarrierPrefix.objects.get_or_create(prefix=prefix, defaults={"carrier": carrier})


def unseed(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    CarrierPrefix = apps.get_model("delivery", "CarrierPrefix")
    CarrierPrefix.objects.filter(prefix__in=[p for ps in PREFIXES.values() for p in ps.split()]).delete()


class Migration(migrations.Migration):
    dependencies = [("delivery", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
