"""R-CMP-8: the platform default for verification codes, 1 a minute, 5 an hour, 10 a day per
recipient (the limits Alibaba Cloud SMS customers rely on); operators change it in the admin."""

from django.db import migrations


def seed(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    FrequencyLimit = apps.get_model("compliance", "FrequencyLimit")
    FrequencyLimit.objects.get_or_create(
        tenant=None, message_type="verification", defaults={"per_minute": 1, "per_hour": 5, "per_day": 10}
    )


def unseed(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    apps.get_model("compliance", "FrequencyLimit").objects.filter(tenant=None, message_type="verification").delete()


class Migration(migrations.Migration):
    dependencies = [("compliance", "0006_frequency_limits")]

    operations = [migrations.RunPython(seed, unseed)]
