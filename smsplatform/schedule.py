"""Periodic platform jobs (enqueued by `manage.py run_scheduler`)."""

from .actors import retry_due_webhooks_job
from .periodic import Periodic

SCHEDULE = [
    Periodic(actor=retry_due_webhooks_job, seconds=60),  # webhooks whose retry job was lost
]
