"""Periodic audit and notice jobs (R-AUD-1, R-AUD-4, R-DLV-7, R-TEN-5, R-TEN-6, R-TEN-8), collected by manage.py run_scheduler."""

from smsplatform.periodic import Periodic

from .actors import (
    process_due_erasures,
    process_terminated_tenants,
    purge_send_log,
    remind_qualifications,
    remind_registration_updates,
    review_service_terms,
    sweep_notice_deliveries,
)

SCHEDULE = [
    Periodic(actor=purge_send_log, cron="30 3 * * *"),
    Periodic(actor=process_due_erasures, cron="0 4 * * *"),
    Periodic(actor=sweep_notice_deliveries, seconds=120),
    Periodic(actor=remind_qualifications, cron="20 8 * * *"),
    # Hourly, so a tenant that renews or tops up sends again within the hour.
    Periodic(actor=review_service_terms, cron="40 * * * *"),
    Periodic(actor=process_terminated_tenants, cron="30 4 * * *"),  # R-TEN-8
    Periodic(actor=remind_registration_updates, cron="25 8 * * *"),  # R-TEN-6
]
