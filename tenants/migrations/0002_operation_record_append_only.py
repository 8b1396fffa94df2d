"""R-AUD-3: the operation trail is append-only, enforced by the database itself."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION refuse_change_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tenants_operationrecord_append_only
    BEFORE UPDATE OR DELETE ON tenants_operationrecord
    FOR EACH ROW EXECUTE FUNCTION refuse_change_append_only();
"""

BACKWARD = "DROP TRIGGER IF EXISTS tenants_operationrecord_append_only ON tenants_operationrecord;"


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD, hints={"model_name": "operationrecord"})]
