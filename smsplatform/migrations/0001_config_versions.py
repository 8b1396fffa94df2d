"""Configuration version counters and the triggers that bump them (issue 17).

A statement-level trigger per watched table sets its kind's counter to the next value of a
sequence: sequences never roll back, so a counter never returns to a value a process may have
cached data under (a rolled-back change leaves the old counter, which differs from the one the
process saw inside that transaction)."""

from django.db import migrations, models

# Kept here (not imported from smsplatform.config_cache): migrations never import app code.
KINDS = {
    "tenants": ("tenants_tenant", "tenants_apikey"),
    "filings": ("compliance_signature", "compliance_template", "compliance_templateversion"),
    "compliance_settings": ("compliance_compliancesettings",),
    "countries": ("compliance_countryrule", "compliance_registeredsender"),
    "frequency": ("compliance_frequencylimit",),
    "rules": ("compliance_rulesetversion",),
    "prices": ("billing_price", "billing_plan", "billing_planassignment", "billing_account"),
    "routing": ("delivery_carrierprefix", "delivery_provinceprefix"),
}
WATCHED_COLUMNS = {
    "tenants_apikey": ("tenant_id", "access_key_id", "secret_hash", "expires_at", "revoked_at"),
    "tenants_tenant": ("state", "state_reason", "schema_name"),
    "billing_account": ("plan_id", "currency", "tenant_id"),
}

FUNCTION = """
CREATE SEQUENCE IF NOT EXISTS public.smsplatform_configversion_seq;
CREATE OR REPLACE FUNCTION public.smsplatform_bump_config_version() RETURNS trigger AS $$
BEGIN
    UPDATE public.smsplatform_configversion
       SET version = nextval('public.smsplatform_configversion_seq')
     WHERE kind = TG_ARGV[0];
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""


def _triggers() -> tuple[str, str]:
    create, drop = [FUNCTION], []
    for kind, tables in KINDS.items():
        create.append(f"INSERT INTO public.smsplatform_configversion (kind, version) VALUES ('{kind}', 0);")
        for table in tables:
            columns = WATCHED_COLUMNS.get(table)
            update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
            name = f"{table}_config_version"
            create.append(
                f"CREATE TRIGGER {name} AFTER INSERT OR {update} OR DELETE OR TRUNCATE ON public.{table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION public.smsplatform_bump_config_version('{kind}');"
            )
            drop.append(f"DROP TRIGGER IF EXISTS {name} ON public.{table};")
    drop.append("DROP FUNCTION IF EXISTS public.smsplatform_bump_config_version();")
    drop.append("DROP SEQUENCE IF EXISTS public.smsplatform_configversion_seq;")
    return "\n".join(create), "\n".join(drop)


CREATE, DROP = _triggers()


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("tenants", "0007_registration_update_duty"),
        ("compliance", "0009_seed_rules_keywords_brands"),
        ("billing", "0004_parts_plans_receivables_currency"),
        ("delivery", "0011_unknown_parts"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConfigVersion",
            fields=[
                ("kind", models.CharField(max_length=32, primary_key=True, serialize=False)),
                ("version", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunSQL(CREATE, DROP),
    ]
