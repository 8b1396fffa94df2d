"""Periodic compliance jobs (enqueued by `manage.py run_scheduler`)."""

from smsplatform.periodic import Periodic

from . import actors

SCHEDULE = [
    Periodic(actor=actors.escalate_overdue_complaints_job, seconds=600),  # R-CMP-7: every 10 minutes
    Periodic(actor=actors.escalate_overdue_rectifications_job, seconds=600),  # R-CMP-6: every 10 minutes
    Periodic(actor=actors.prune_volume_counters_job, cron="17 4 * * *"),  # R-CMP-8: daily at 04:17
]
