"""The admin permission matrix: what each operator role may do with each admin-registered model.

Operations: view, add, change, delete, import, export, and each admin action by name. A role
not listed for a model may do nothing with it; a model not listed here fails
tests/security/test_admin_matrix.py, which logs in as every role, walks every registered admin
URL and action and compares what it may do with this table. docs/operations.md prints it.

How it is enforced: the grants in each app's roles.py (`manage.py sync_roles`), the admins'
own checks, and smsplatform.admin_site.GuardedModelAdmin for every registered admin (import
needs add + change, export needs view, an action without declared permissions needs change).
Full recipient numbers are a per-user grant (delivery.view_full_number), never a role's.
"""

from .roles import ROLES as _DECLARED

ROLES = tuple(_DECLARED)  # smsplatform.roles declares them

MATRIX: dict[str, dict[str, str]] = {
    # Staff accounts, groups and login records: superusers only.
    "auth.group": {},
    "auth.user": {},
    "axes.accessattempt": {},
    "axes.accessfailurelog": {},
    "axes.accesslog": {},
    "billing.account": {
        "operator": "view",
        "finance": "view",
        "auditor": "view",
    },
    "billing.dispute": {
        "operator": "view",
        "finance": "view",
        "auditor": "view",
    },
    "billing.dormancycase": {
        "operator": "view cancel_cases",
        "finance": "view",
        "auditor": "view",
    },
    "billing.hold": {
        "finance": "view",
        "auditor": "view",
    },
    "billing.invoice": {
        "finance": "view mark_returned",
        "auditor": "view",
    },
    "billing.ledgerentry": {
        "finance": "view",
        "auditor": "view",
    },
    "billing.packagegrant": {
        "finance": "view",
        "auditor": "view",
    },
    "billing.packageproduct": {
        "finance": "view add change",
        "auditor": "view",
    },
    "billing.plan": {
        "finance": "view add change make_default_in_7_days",
        "auditor": "view",
    },
    "billing.planassignment": {
        "finance": "view",
        "auditor": "view",
    },
    "billing.receivable": {
        "finance": "view",
        "auditor": "view",
    },
    "billing.price": {
        "finance": "view add",
        "auditor": "view",
    },
    "billing.refund": {
        "finance": "view",
        "auditor": "view",
    },
    "compliance.bannedrule": {
        "operator": "view add change delete import export delete_selected disable_rules enable_rules",
        "reviewer": "view export",
        "auditor": "view export",
    },
    "compliance.complaint": {
        "operator": "view add change close_complaints escalate_overdue",
        "auditor": "view",
    },
    "compliance.compliancesettings": {
        "operator": "view add change mark_rectification_done",
        "auditor": "view",
    },
    "compliance.countryrule": {
        "operator": "view add change delete import export delete_selected",
        "reviewer": "view export",
        "auditor": "view export",
    },
    "compliance.enforcementaction": {
        "operator": "view",
        "reviewer": "view",
        "auditor": "view",
    },
    "compliance.frequencylimit": {
        "operator": "view add change delete delete_selected",
        "auditor": "view",
    },
    "compliance.globalblock": {
        "operator": "view add change delete import export delete_selected",
        "auditor": "view export",
    },
    "compliance.linkdomain": {
        "operator": "view add delete delete_selected",
        "auditor": "view",
    },
    "compliance.optoutkeyword": {
        "operator": "view add change delete delete_selected",
        "auditor": "view",
    },
    "compliance.optoutreview": {
        "operator": "view dismiss_selected opt_out_selected",
        "auditor": "view",
    },
    "compliance.protectedbrand": {
        "operator": "view add change delete delete_selected",
        "reviewer": "view",
        "auditor": "view",
    },
    "compliance.registeredsender": {
        "operator": "view add delete delete_selected",
        "auditor": "view",
    },
    "compliance.signature": {
        "operator": "view",
        "reviewer": "view approve_selected reject_selected revoke_selected",
        "auditor": "view",
    },
    "compliance.template": {
        "operator": "view",
        "reviewer": "view",
        "auditor": "view",
    },
    "compliance.templateversion": {
        "operator": "view",
        "reviewer": "view approve_selected reject_selected revoke_selected",
        "auditor": "view",
    },
    "compliance.violation": {
        "operator": "view add change",
        "reviewer": "view",
        "auditor": "view",
    },
    "compliance.volumecounter": {
        "operator": "view",
        "auditor": "view",
    },
    "delivery.callbackdelivery": {
        "operator": "view retry_selected",
    },
    "delivery.carrierprefix": {
        "operator": "view add change delete delete_selected",
    },
    "delivery.channel": {
        "operator": "view add change",
        "finance": "view",
    },
    "delivery.erasurerequest": {
        "operator": "view add process_now",
        "auditor": "view",
    },
    "delivery.exportjob": {
        "operator": "view",
        "auditor": "view add",
    },
    "delivery.heldmessagereview": {
        "reviewer": "view",
    },
    "delivery.incident": {
        "operator": "view add change",
        "finance": "view",
        "auditor": "view",
    },
    "delivery.incidentcompensation": {
        "operator": "view",
        "finance": "view add",
        "auditor": "view",
    },
    "delivery.maintenance": {
        "operator": "view add change cancel_selected",
    },
    "delivery.message": {
        "operator": "view",
        "reviewer": "view",
        "finance": "view",
        "auditor": "view",
    },
    "delivery.pendingreceipt": {
        "operator": "view",
    },
    "delivery.provinceprefix": {
        "operator": "view add change delete delete_selected",
    },
    "delivery.publicholiday": {
        "operator": "view add change delete import export delete_selected",
    },
    "delivery.route": {
        "operator": "view add change delete delete_selected",
        "finance": "view",
    },
    "delivery.serviceleveltarget": {
        "operator": "view add change",
        "auditor": "view",
    },
    "delivery.tenantnumber": {
        "operator": "view add change",
    },
    "tenants.aftertermination": {
        "operator": "view",
        "auditor": "view",
    },
    "tenants.apikey": {
        "operator": "view revoke_keys",
    },
    # R-AUD-5: compiling and handing over evidence is a senior step (per-user grant, see
    # tenants/roles.py); auditors see packages but cannot download them.
    "tenants.evidencepackage": {
        "auditor": "view",
    },
    # Releasing a hold is a senior step (tenants.release_legal_hold, per user).
    "tenants.legalhold": {
        "operator": "view add",
        "auditor": "view",
    },
    "tenants.notice": {
        "operator": "view",
        "auditor": "view",
    },
    "tenants.noticebroadcast": {
        "operator": "view add",
    },
    "tenants.operationrecord": {
        "operator": "view",
        "auditor": "view export",
    },
    "tenants.qualification": {
        "operator": "view approve reject",
        "reviewer": "view approve reject",
    },
    "tenants.reconfirmation": {
        "operator": "view",
    },
    "tenants.registrationupdateduty": {
        "operator": "view add",
        "auditor": "view",
    },
    "tenants.tenant": {
        "operator": "view add change renew_term",
        "reviewer": "view",
        "finance": "view renew_term",
        "auditor": "view",
    },
    "tenants.termsresponse": {
        "operator": "view change",
        "auditor": "view",
    },
    # Publishing a version is a senior step (tenants.publish_terms + change, per user).
    "tenants.termsversion": {
        "operator": "view add",
    },
}


def allowed(model_label: str, role: str) -> set[str]:
    return set(MATRIX.get(model_label, {}).get(role, "").split())
