"""Role grants of the audit features (issue 6). The lead merges these into a `roles.py`
(sync_roles only reads `<app>/roles.py`).

Auditors: export permission and read access, no other write permission (R-AUD-2).
"""

ROLE_PERMISSIONS = {
    "auditor": [
        "tenants.view_exportjob", "tenants.export_send_log", "tenants.export_operation_records",
        "tenants.view_operationrecord", "tenants.view_erasurerequest", "tenants.view_tenant",
    ],
    "operator": [
        "tenants.view_exportjob", "tenants.view_erasurerequest", "tenants.add_erasurerequest",
    ],
}
# Unmasked numbers (`tenants.view_full_number`) are granted per user, never to a whole role.
