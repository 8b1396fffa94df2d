"""django-import-export resources: banned rules, country rules, the block list (admin) and opt-outs (API)."""

from import_export import fields, resources

from .models import COUNTRY_RULE_FIELDS, BannedRule, CountryRule, GlobalBlock, OptOut


class BannedRuleResource(resources.ModelResource):
    """Import/export of banned-content rules (R-CMP-3). Rows are matched on (kind, pattern)."""

    class Meta:
        model = BannedRule
        fields = ("id", "kind", "pattern", "category", "action", "max_gap", "enabled", "note")
        import_id_fields = ("kind", "pattern")
        skip_unchanged = True
        report_skipped = False

    def before_save_instance(self, instance, row, **kwargs):
        from .scanner import validate_pattern

        problem = validate_pattern(kind=instance.kind, pattern=instance.pattern, max_gap=instance.max_gap)
        if problem:
            raise ValueError(problem)

    def after_import(self, dataset, result, **kwargs):
        # Every process rebuilds its scanner (R-CMP-3) and the import is on the operation trail.
        if kwargs.get("dry_run"):
            return
        from tenants.services import Actor, record_operation

        from .services import bump_rules_version

        bump_rules_version()
        user = kwargs.get("user")
        actor = Actor.for_user(user) if user is not None else Actor.system("rule-import")
        record_operation(
            actor=actor, action="banned_rule.import", after={"rows": len(dataset), "totals": dict(result.totals)}
        )


class CountryRuleResource(resources.ModelResource):
    """Import/export of per-country rules (R-CMP-9). Rows are matched on the country code."""

    class Meta:
        model = CountryRule
        fields = COUNTRY_RULE_FIELDS
        import_id_fields = ("country",)
        skip_unchanged = True
        report_skipped = False

    def before_import_row(self, row, **kwargs):
        if row.get("country"):
            row["country"] = str(row["country"]).strip().upper()

    def before_save_instance(self, instance, row, **kwargs):
        from .services import country_rule_problem

        problem = country_rule_problem(instance)
        if problem:
            raise ValueError(problem)

    def after_import(self, dataset, result, **kwargs):
        if kwargs.get("dry_run"):
            return
        from tenants.services import Actor, record_operation

        user = kwargs.get("user")
        actor = Actor.for_user(user) if user is not None else Actor.system("country-rule-import")
        record_operation(
            actor=actor, action="country_rule.import", after={"rows": len(dataset), "totals": dict(result.totals)}
        )


class GlobalBlockResource(resources.ModelResource):
    class Meta:
        model = GlobalBlock
        fields = ("number", "reason", "source", "created_by", "created_at")
        import_id_fields = ("number",)
        skip_unchanged = True

    def before_save_instance(self, instance, row, **kwargs):
        from smsplatform.numbers import normalise_lenient

        instance.number = normalise_lenient(instance.number)
        if not instance.created_by:
            user = kwargs.get("user")
            instance.created_by = f"user:{user.get_username()}" if user is not None else "import"

    def after_import(self, dataset, result, **kwargs):
        if kwargs.get("dry_run"):
            return
        from tenants.services import Actor, record_operation

        user = kwargs.get("user")
        actor = Actor.for_user(user) if user is not None else Actor.system("block-import")
        record_operation(actor=actor, action="global_block.import", after={"rows": len(dataset)})


class OptOutResource(resources.ModelResource):
    """Export of a tenant's opt-outs (run inside the tenant's schema)."""

    created_at = fields.Field(attribute="created_at", column_name="created_at")

    class Meta:
        model = OptOut
        fields = ("number", "source", "keyword", "created_at")
        export_order = ("number", "source", "keyword", "created_at")
