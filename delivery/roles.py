"""Permissions this app grants to each operator role (collected by `manage.py sync_roles`; the
roles are declared in smsplatform.roles).

The send log's exports and erasure requests (R-AUD-2, R-AUD-4): auditors export (send log and
operation trail), operators file erasure requests. Unmasked numbers (`delivery.view_full_number`)
are granted per user, never to a whole role (R-AUD-2).
"""

_VIEW = [
    "delivery.view_channel",
    "delivery.view_route",
    "delivery.view_carrierprefix",
    "delivery.view_provinceprefix",
    "delivery.view_maintenance",
    "delivery.view_tenantnumber",
    "delivery.view_callbackdelivery",
    "delivery.view_pendingreceipt",
    "delivery.view_publicholiday",
    "delivery.view_message",
    # R-DLV-8: service levels, incidents and their compensation.
    "delivery.view_serviceleveltarget",
    "delivery.view_incident",
    "delivery.view_incidentcompensation",
]

ROLE_PERMISSIONS = {
    "operator": [
        *_VIEW,
        "delivery.view_exportjob",
        "delivery.view_erasurerequest",
        "delivery.add_erasurerequest",
        "delivery.manage_channels",
        "delivery.add_channel",
        "delivery.change_channel",
        "delivery.add_route",
        "delivery.change_route",
        "delivery.delete_route",
        "delivery.add_carrierprefix",
        "delivery.change_carrierprefix",
        "delivery.delete_carrierprefix",
        "delivery.add_provinceprefix",
        "delivery.change_provinceprefix",
        "delivery.delete_provinceprefix",
        "delivery.add_maintenance",
        "delivery.change_maintenance",
        "delivery.add_tenantnumber",
        "delivery.change_tenantnumber",
        "delivery.change_callbackdelivery",
        "delivery.add_publicholiday",
        "delivery.change_publicholiday",
        "delivery.delete_publicholiday",
        "delivery.add_serviceleveltarget",
        "delivery.change_serviceleveltarget",
        "delivery.add_incident",
        "delivery.close_incident",
    ],
    # R-CMP-3/8: reviewers decide held messages (release or reject) on the held-messages page.
    "reviewer": ["delivery.review_held_messages", "delivery.view_message"],
    # R-BIL-8: disputes are answered message by message (carrier ids, receipts, the hold).
    "finance": [
        "delivery.view_channel",
        "delivery.view_route",
        "delivery.view_message",
        # R-DLV-8: finance books the compensation of the platform's own faults.
        "delivery.view_incident",
        "delivery.view_incidentcompensation",
        "delivery.compensate_incident",
    ],
    # The auditor reads records (the send log, incidents), not the delivery configuration: channel
    # accounts, routes, prefixes, callbacks and receipts stay with operators (docs/audit.md).
    "auditor": [
        "delivery.view_message",
        # R-AUD-2/3: exports of the send log and of the trail; R-AUD-4: erasure requests (read).
        "delivery.view_exportjob",
        "delivery.export_send_log",
        "delivery.export_operation_records",
        "delivery.view_erasurerequest",
        "delivery.view_serviceleveltarget",
        "delivery.view_incident",
        "delivery.view_incidentcompensation",
    ],
}
