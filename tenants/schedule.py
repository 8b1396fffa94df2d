"""Periodic audit jobs (R-AUD-1, R-AUD-4), collected by manage.py run_scheduler."""

from smsplatform.periodic import Periodic

from .actors import process_due_erasures, purge_send_log

SCHEDULE = [
    Periodic(actor=purge_send_log, cron="30 3 * * *"),
    Periodic(actor=process_due_erasures, cron="0 4 * * *"),
]
