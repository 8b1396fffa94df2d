"""Permissions this app grants to each operator role (collected by `manage.py sync_roles`)."""

ROLE_PERMISSIONS = {
    "operator": [
        "tenants.view_tenant", "tenants.add_tenant", "tenants.change_tenant", "tenants.change_tenant_state",
        "tenants.view_apikey", "tenants.manage_api_keys", "tenants.view_domain", "tenants.view_operationrecord",
    ],
    "reviewer": ["tenants.view_tenant"],
    "finance": ["tenants.view_tenant"],
    "auditor": ["tenants.view_tenant", "tenants.view_operationrecord"],
}
