"""Billing's periodic jobs (enqueued by manage.py run_scheduler)."""

from smsplatform.periodic import Periodic

from .actors import daily_dormancy_job, release_stale_held_job

SCHEDULE = [
    Periodic(actor=daily_dormancy_job, cron="0 3 * * *"),
    Periodic(actor=release_stale_held_job, cron="*/15 * * * *"),
]
