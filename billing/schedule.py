"""Billing's periodic jobs (enqueued by manage.py run_scheduler)."""

from smsplatform.periodic import Periodic

from .actors import daily_dormancy

SCHEDULE = [Periodic(actor=daily_dormancy, cron="0 3 * * *")]
