"""Permissions this app grants to each operator role (collected by `manage.py sync_roles`; the
roles are declared in smsplatform.roles).

The senior steps no role holds are granted per user (superusers, or a named senior operator given
them one by one): `publish_terms` (with `change_termsversion`), `release_legal_hold`, `compile_evidence`,
`hand_over_evidence` (R-TEN-7, R-AUD-5): the person who places a hold is not the one who releases it.
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
        # R-DLV-7 notices and R-CMP-8 held-volume answers.
        "tenants.broadcast_notice",
        "tenants.add_noticebroadcast",
        "tenants.view_noticebroadcast",
        "tenants.view_notice",
        "tenants.view_reconfirmation",
        # R-TEN-7: draft agreement versions and answer objections; publishing is a senior step.
        "tenants.add_termsversion",
        "tenants.view_termsversion",
        "tenants.change_termsresponse",
        "tenants.view_termsresponse",
        # R-TEN-6 qualifications; R-AUD-5 holds (placing only).
        "tenants.review_qualification",
        "tenants.view_qualification",
        "tenants.place_legal_hold",
        "tenants.view_legalhold",
        # R-TEN-5: renew a tenant's one-year service term.
        "tenants.renew_service_term",
        # R-TEN-8: the data returned to terminated tenants.
        "tenants.view_aftertermination",
        "tenants.download_termination_export",
        # R-TEN-6: registration changes and their 10-working-day update duty.
        "tenants.view_registrationupdateduty",
        "tenants.add_registrationupdateduty",
    ],
    "reviewer": ["tenants.view_tenant", "tenants.review_qualification", "tenants.view_qualification"],
    # R-TEN-5: renewals follow payment, so finance renews terms too.
    "finance": ["tenants.view_tenant", "tenants.renew_service_term"],
    # R-AUD-2: auditors read and export; no other write permission.
    "auditor": [
        "tenants.view_tenant",
        "tenants.view_operationrecord",
        # R-AUD-5: see holds, evidence packages (not their files), notices and terms answers.
        "tenants.view_legalhold",
        "tenants.view_evidencepackage",
        "tenants.view_notice",
        "tenants.view_termsresponse",
        "tenants.view_aftertermination",
        "tenants.view_registrationupdateduty",
    ],
}
