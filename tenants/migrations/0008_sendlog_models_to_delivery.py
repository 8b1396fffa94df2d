"""ExportJob and ErasureRequest move to delivery (issue 19): state only, the tables stay
(tenants_exportjob, tenants_erasurerequest; delivery.0014 takes them over, content types too)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0007_registration_update_duty"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="exportjob",
                    name="requested_by",
                ),
                migrations.DeleteModel(
                    name="ErasureRequest",
                ),
                migrations.DeleteModel(
                    name="ExportJob",
                ),
            ],
            database_operations=[],
        ),
    ]
