"""Periodic jobs of tenant duties (R-DLV-7, R-TEN-5, R-TEN-6, R-TEN-8), collected by manage.py run_scheduler.

The send log's purge and erasure jobs (R-AUD-1, R-AUD-4) are in delivery/schedule.py."""

from smsplatform.periodic import Periodic

from .actors import (
    process_terminated_tenants_job,
    remind_qualifications_job,
    remind_registration_updates_job,
    review_service_terms_job,
    sweep_notice_deliveries_job,
)

SCHEDULE = [
    Periodic(actor=sweep_notice_deliveries_job, seconds=120),
    Periodic(actor=remind_qualifications_job, cron="20 8 * * *"),
    # Hourly, so a tenant that renews or tops up sends again within the hour.
    Periodic(actor=review_service_terms_job, cron="40 * * * *"),
    Periodic(actor=process_terminated_tenants_job, cron="30 4 * * *"),  # R-TEN-8
    Periodic(actor=remind_registration_updates_job, cron="25 8 * * *"),  # R-TEN-6
]
