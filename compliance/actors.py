"""Thin dramatiq actors for compliance's periodic jobs (listed in compliance/schedule.py)."""

import dramatiq

from smsplatform.periodic import advisory_lock

from . import services


@dramatiq.actor(max_retries=0)
def escalate_overdue_complaints_job() -> int:
    """R-CMP-7: complaints not answered within 72 hours escalate (and optionally suspend)."""
    with advisory_lock("compliance.escalate_overdue_complaints") as got:
        if not got:
            return 0
        return services.escalate_overdue_complaints()


@dramatiq.actor(max_retries=0)
def prune_volume_counters_job() -> int:
    """R-CMP-8: keep the volume counters small."""
    with advisory_lock("compliance.prune_volume_counters") as got:
        if not got:
            return 0
        return services.prune_volume_counters()


@dramatiq.actor(max_retries=0)
def escalate_overdue_rectifications_job() -> int:
    """R-CMP-6: rectification deadlines passed and not marked done escalate (once)."""
    with advisory_lock("compliance.escalate_overdue_rectifications") as got:
        if not got:
            return 0
        return services.escalate_overdue_rectifications()
