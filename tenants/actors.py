"""Background jobs of tenant duties: notices, qualifications, service terms, after termination.

Thin: they load ids and call the services. The send log's jobs (exports, purge, erasure) are in
delivery.actors.
"""

import dramatiq

from smsplatform.periodic import advisory_lock


@dramatiq.actor(queue_name="notices", max_retries=0)
def send_notice_email_job(delivery_id: int) -> None:
    """R-DLV-7: one notice e-mail; the service records failures and schedules its own retry."""
    from .notices import deliver_notice_email

    deliver_notice_email(delivery_id=delivery_id)


@dramatiq.actor(queue_name="notices", max_retries=0)
def sweep_notice_deliveries_job() -> None:
    """R-DLV-7: lost e-mail jobs are sent; webhook records catch up with their callbacks."""
    from .notices import retry_pending_emails, sync_webhook_deliveries

    with advisory_lock("notices.sweep") as got:
        if got:
            retry_pending_emails()
            sync_webhook_deliveries()


@dramatiq.actor(queue_name="notices", max_retries=3)
def remind_qualifications_job() -> None:
    """R-TEN-6: documents expiring within 30 days, or expired, are notified once."""
    from .qualifications import remind_qualifications as remind

    with advisory_lock("notices.remind_qualifications") as got:
        if got:
            remind()


@dramatiq.actor(queue_name="notices", max_retries=3)
def review_service_terms_job() -> None:
    """R-TEN-5: reminders before the term ends; service ends (after notice) when it expired
    unrenewed or the bought messages are used up; resumes once renewed or funded."""
    from .term import review_terms

    with advisory_lock("tenants.review_service_terms") as got:
        if got:
            review_terms()


@dramatiq.actor(queue_name="audit", max_retries=3, time_limit=6 * 3600 * 1000)
def process_terminated_tenants_job() -> None:
    """R-TEN-8: export each terminated tenant's data once; delete it when R-AUD-1/R-AUD-5 allow."""
    from .after_termination import process_terminated_tenants as process

    with advisory_lock("audit.after_termination") as got:
        if got:
            process()


@dramatiq.actor(queue_name="notices", max_retries=3)
def remind_registration_updates_job() -> None:
    """R-TEN-6: reminders before the 10-working-day update deadline; operators told when it passes."""
    from .registration_updates import remind_update_duties

    with advisory_lock("notices.remind_registration_updates") as got:
        if got:
            remind_update_duties()
