"""Periodic jobs of tenant duties (R-DLV-7, R-TEN-5, R-TEN-6, R-TEN-8), collected by manage.py run_scheduler.

The send log's purge and erasure jobs (R-AUD-1, R-AUD-4) are in delivery/schedule.py."""

from smsplatform.periodic import Periodic

from .actors import (
    process_terminated_tenants,
    remind_qualifications,
    remind_registration_updates,
    review_service_terms,
    sweep_notice_deliveries,
)

SCHEDULE = [
    Periodic(actor=sweep_notice_deliveries, seconds=120),
    Periodic(actor=remind_qualifications, cron="20 8 * * *"),
    # Hourly, so a tenant that renews or tops up sends again within the hour.
    Periodic(actor=review_service_terms, cron="40 * * * *"),
    Periodic(actor=process_terminated_tenants, cron="30 4 * * *"),  # R-TEN-8
    Periodic(actor=remind_registration_updates, cron="25 8 * * *"),  # R-TEN-6
]
