"""Billing's dramatiq actors: thin, they load ids and call services (R-BIL-2, R-BIL-6, R-TEN-4).

Services never import this module: they enqueue by actor name (services.enqueue), so imports run
one way, actors → services.
"""

import dramatiq
from django.utils import timezone

from delivery.held import release_stale_held_messages  # it moves messages: delivery's (R-BIL-2)
from smsplatform.periodic import advisory_lock

from . import services


@dramatiq.actor(queue_name="billing", max_retries=5)
def send_low_balance_alert_job(account_id: int, balance: int, threshold: int) -> None:
    """R-BIL-6: e-mail + signed webhook, enqueued after the crossing committed."""
    services.notify_low_balance(account_id=account_id, balance=balance, threshold=threshold)


@dramatiq.actor(queue_name="billing", max_retries=5)
def send_dormancy_notice_job(case_id: int) -> None:
    services.notify_dormancy(case_id=case_id)


@dramatiq.actor(queue_name="billing", max_retries=0)
def daily_dormancy_job(now_iso: str | None = None) -> None:
    """R-TEN-4 / R-BIL-3: find dormancy candidates (notify) and act on expired notices.
    Never overlaps with itself (advisory lock)."""
    from datetime import datetime

    now = datetime.fromisoformat(now_iso) if now_iso else timezone.now()
    with advisory_lock("billing.daily_dormancy") as got:
        if not got:
            return
        services.act_on_dormancy(now=now)
        services.scan_dormancy(now=now)


@dramatiq.actor(queue_name="billing", max_retries=0)
def release_stale_held_job(now_iso: str | None = None) -> None:
    """R-BIL-2: cancel messages held for review past the timeout and release their money."""
    from datetime import datetime

    now = datetime.fromisoformat(now_iso) if now_iso else timezone.now()
    with advisory_lock("billing.release_stale_held") as got:
        if got:
            release_stale_held_messages(now=now)
