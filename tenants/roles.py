"""Permissions this app grants to each operator role (collected by `manage.py sync_roles`).

Unmasked numbers (`tenants.view_full_number`) are granted per user, never to a whole role (R-AUD-2).
"""

ROLE_PERMISSIONS = {
    "operator": [
        "tenants.view_tenant",
        "tenants.add_tenant",
        "tenants.change_tenant",
        "tenants.change_tenant_state",
        "tenants.view_apikey",
        "tenants.manage_api_keys",
        "tenants.view_domain",
        "tenants.view_operationrecord",
        "tenants.view_exportjob",
        "tenants.view_erasurerequest",
        "tenants.add_erasurerequest",
        # R-TEN-8: the data returned to terminated tenants.
        "tenants.view_aftertermination",
        "tenants.download_termination_export",
        # R-TEN-6: registration changes and their 10-working-day update duty.
        "tenants.view_registrationupdateduty",
        "tenants.add_registrationupdateduty",
    ],
    "reviewer": ["tenants.view_tenant"],
    "finance": ["tenants.view_tenant"],
    # R-AUD-2: auditors read and export; no other write permission.
    "auditor": [
        "tenants.view_tenant",
        "tenants.view_operationrecord",
        "tenants.view_exportjob",
        "tenants.export_send_log",
        "tenants.export_operation_records",
        "tenants.view_erasurerequest",
        "tenants.view_aftertermination",
        "tenants.view_registrationupdateduty",
    ],
}
