"""The platform's own dramatiq actors: thin, they call smsplatform.webhooks. Enqueued by name
(smsplatform.jobs.enqueue), so no service imports this module."""

import dramatiq

from . import webhooks


@dramatiq.actor(queue_name="callbacks", max_retries=0)
def deliver_webhook_job(webhook_id: int) -> None:
    """One try of a WebhookDelivery (its own back-off schedules the next)."""
    webhooks.deliver_webhook(webhook_id=webhook_id)


@dramatiq.actor(queue_name="periodic", max_retries=0)
def retry_due_webhooks_job() -> None:
    """Webhooks whose delayed job was lost are sent again (smsplatform/schedule.py)."""
    for webhook_id in webhooks.due_webhooks():
        deliver_webhook_job.send(webhook_id)
