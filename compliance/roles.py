"""Permissions this app grants to each operator role (collected by `manage.py sync_roles`)."""

_VIEW_ALL = [
    "compliance.view_signature",
    "compliance.view_signatureproof",
    "compliance.view_template",
    "compliance.view_templateversion",
    "compliance.view_bannedrule",
    "compliance.view_globalblock",
    "compliance.view_violation",
    "compliance.view_enforcementaction",
    "compliance.view_complaint",
    "compliance.view_compliancesettings",
    "compliance.view_volumecounter",
    "compliance.view_countryrule",
    "compliance.view_registeredsender",
]

ROLE_PERMISSIONS = {
    # R-CMP-1/2: review signatures and templates.
    "reviewer": [
        "compliance.view_signature",
        "compliance.view_signatureproof",
        "compliance.review_signature",
        "compliance.view_template",
        "compliance.view_templateversion",
        "compliance.review_template",
        "compliance.view_bannedrule",
        "compliance.view_violation",
        "compliance.view_enforcementaction",
        "compliance.view_countryrule",
    ],
    # R-CMP-3..9: rules, block list, enforcement, complaints, per-tenant settings.
    "operator": [
        *_VIEW_ALL,
        "compliance.add_bannedrule",
        "compliance.change_bannedrule",
        "compliance.delete_bannedrule",
        "compliance.add_globalblock",
        "compliance.change_globalblock",
        "compliance.delete_globalblock",
        "compliance.manage_opt_outs",
        "compliance.add_violation",
        "compliance.change_violation",
        "compliance.enforce",
        "compliance.add_complaint",
        "compliance.change_complaint",
        "compliance.handle_complaint",
        "compliance.add_compliancesettings",
        "compliance.change_compliancesettings",
        "compliance.add_countryrule",
        "compliance.change_countryrule",
        "compliance.delete_countryrule",
        "compliance.add_registeredsender",
        "compliance.delete_registeredsender",
    ],
    "auditor": _VIEW_ALL,
}
