"""Billing's periodic jobs (enqueued by manage.py run_scheduler)."""

from smsplatform.periodic import Periodic

from .actors import daily_dormancy, release_stale_held

SCHEDULE = [
    Periodic(actor=daily_dormancy, cron="0 3 * * *"),
    Periodic(actor=release_stale_held, cron="*/15 * * * *"),
]
