"""Periodic delivery jobs (enqueued by `manage.py run_scheduler`)."""

from smsplatform.periodic import Periodic

from . import actors

SCHEDULE = [
    Periodic(actor=actors.relay_due_outbox_job, seconds=5),  # outbox sweeper + scheduled sends
    Periodic(actor=actors.requeue_stale_queued_job, seconds=60),
    Periodic(actor=actors.sweep_submissions_job, seconds=30),  # stale submitting → reconcile
    Periodic(actor=actors.apply_pending_receipts_job, seconds=15),
    Periodic(actor=actors.replay_inbound_spool_job, seconds=15),  # issue 21: spooled during an outage
    Periodic(actor=actors.query_stale_parts_job, seconds=60),  # issue 21: query_sm before the 72 h expiry
    Periodic(actor=actors.expire_receipts_job, seconds=600),  # no receipt in 72 h → unknown
    Periodic(actor=actors.retry_due_callbacks_job, seconds=60),
    Periodic(actor=actors.purge_housekeeping_job, cron="40 3 * * *"),  # working rows, not the send log
    Periodic(actor=actors.evaluate_service_levels_job, seconds=60),  # R-DLV-8 targets → incidents
    # send log (R-AUD-1, R-AUD-4): the nightly purge, then erasure requests whose time has come
    Periodic(actor=actors.purge_send_log_job, cron="30 3 * * *"),
    Periodic(actor=actors.process_due_erasures_job, cron="0 4 * * *"),
]
