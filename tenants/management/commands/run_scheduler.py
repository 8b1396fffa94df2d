"""Long-running: enqueue every app's periodic actors on time (see smsplatform/periodic.py).

Issue 21: it never exits on a broker or database outage: a tick that cannot be enqueued is
logged in one line and the next tick tries again (the jobs are idempotent sweeps).
"""

import logging

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.conf import settings
from django.core.management.base import BaseCommand

from smsplatform.outage import OUTAGE_ERRORS
from smsplatform.periodic import collect_schedule

log = logging.getLogger("smsplatform.scheduler")


def enqueue(actor) -> bool:
    """Send one periodic job; False (logged) when the broker is unavailable."""
    try:
        actor.send()
    except OUTAGE_ERRORS as exc:
        log.warning("%s not enqueued: broker unavailable (%s); next tick retries", actor.actor_name, exc)
        return False
    return True


class Command(BaseCommand):
    help = "Run the periodic job scheduler (one per deployment)."

    def handle(self, *args, **options):
        import smsplatform.worker  # noqa: F401  (imports every actor)

        scheduler = BlockingScheduler(timezone=settings.TIME_ZONE)
        for job in collect_schedule():
            trigger = (
                CronTrigger.from_crontab(job.cron, timezone=settings.TIME_ZONE)
                if job.cron
                else IntervalTrigger(seconds=job.seconds)
            )
            scheduler.add_job(
                enqueue, trigger, args=[job.actor], id=job.actor.actor_name, coalesce=True, max_instances=1
            )
            self.stdout.write(f"scheduled {job.actor.actor_name}: {job.cron or f'every {job.seconds}s'}")
        scheduler.start()
