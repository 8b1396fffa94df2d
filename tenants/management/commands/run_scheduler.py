"""Long-running: enqueue every app's periodic actors on time (see smsplatform/periodic.py)."""

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.conf import settings
from django.core.management.base import BaseCommand

from smsplatform.periodic import collect_schedule


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
            scheduler.add_job(job.actor.send, trigger, id=job.actor.actor_name, coalesce=True, max_instances=1)
            self.stdout.write(f"scheduled {job.actor.actor_name}: {job.cron or f'every {job.seconds}s'}")
        scheduler.start()
