"""R-BIL-9: ledger entries are append-only, enforced by the database itself; a default plan."""

from django.db import migrations

FORWARD = """
CREATE TRIGGER billing_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION refuse_change_append_only();
"""
BACKWARD = "DROP TRIGGER IF EXISTS billing_ledgerentry_append_only ON billing_ledgerentry;"


def default_plan(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    Plan = apps.get_model("billing", "Plan")
    if not Plan.objects.filter(is_default=True).exists():
        Plan.objects.get_or_create(code="standard", defaults={"name": "Standard", "is_default": True})


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial"), ("tenants", "0002_operation_record_append_only")]
    operations = [
        migrations.RunSQL(FORWARD, BACKWARD, hints={"model_name": "ledgerentry"}),
        migrations.RunPython(default_plan, migrations.RunPython.noop, hints={"model_name": "plan"}),
    ]
