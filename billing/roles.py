"""Permissions billing grants to each operator role (collected by `manage.py sync_roles`).
Finance runs money; auditors only look; operators see accounts and handle dormancy cases."""

_VIEW = [
    "billing.view_account",
    "billing.view_ledgerentry",
    "billing.view_hold",
    "billing.view_price",
    "billing.view_plan",
    "billing.view_packageproduct",
    "billing.view_packagegrant",
    "billing.view_invoice",
    "billing.view_refund",
    "billing.view_dispute",
    "billing.view_dormancycase",
    "billing.view_statement",
    "billing.view_receivable",
    "billing.view_planassignment",
]

ROLE_PERMISSIONS = {
    "finance": [
        *_VIEW,
        "billing.topup_account",
        "billing.refund_account",
        "billing.forfeit_account",
        "billing.penalize_account",
        "billing.adjust_account",
        "billing.issue_invoice",
        "billing.resolve_dispute",
        "billing.add_price",
        "billing.add_plan",
        "billing.change_plan",
        "billing.add_packageproduct",
        "billing.change_packageproduct",
    ],
    "operator": [
        "billing.view_account",
        "billing.view_dormancycase",
        "billing.manage_dormancy",
        "billing.view_dispute",
    ],
    "auditor": list(_VIEW),
}
