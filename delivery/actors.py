"""dramatiq actors of delivery: thin, they take ids and call the services (R-DLV-1/3/4).

Channel jobs run on one queue per channel (`channel.<id>`); `ChannelQueues` declares those queues
in every worker (at boot and every few seconds, so a channel added later gets consumers) and
closes each worker thread's SMPP sessions when the thread stops.
"""

import logging
import threading

import dramatiq
from django.db import close_old_connections, connection
from dramatiq.middleware import Middleware

from smsplatform.periodic import advisory_lock

from . import callbacks, channel_live, inbound, outbox, sender, spool, sweeps
from .smpp import pool

log = logging.getLogger(__name__)


class ChannelQueues(Middleware):
    """Declare `channel.<id>` queues in the worker and close thread-owned sessions on shutdown."""

    refresh_seconds = 5.0

    poll_seconds = 0.2

    def after_worker_boot(self, broker, worker):
        self._stop = threading.Event()
        threading.Thread(
            target=self._refresh_loop, args=(broker, self._stop), name="channel-queues", daemon=True
        ).start()
        threading.Thread(target=self._idle_poll_loop, args=(self._stop,), name="idle-binds", daemon=True).start()

    def before_worker_shutdown(self, broker, worker):
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()

    def before_worker_thread_shutdown(self, broker, thread):
        pool.SessionRegistry.close_all()
        connection.close()

    def _refresh_loop(self, broker, stop):
        while not stop.is_set():
            try:
                declare_channel_queues(broker)
            except Exception:  # the database may be briefly away; try again next round
                log.exception("declaring channel queues failed")
            finally:
                close_old_connections()
            stop.wait(self.refresh_seconds)

    def _idle_poll_loop(self, stop):
        """Idle binds still get receipts, replies and enquire_links: read them between jobs."""
        while not stop.is_set():
            try:
                pool.SessionRegistry.poll_idle(apply_results=sender.apply_submit_results)
                spool.replay_if_due()  # issue 21: what was spooled during an outage, once it is over
                channel_live.publish_figures()
            except Exception:  # a receipt that fails is answered with an error and redelivered
                log.exception("polling idle binds failed")
            finally:
                # A killed or broken connection is replaced (without this the thread kept its dead
                # connection and refused every receipt from then on: found by pg_terminate_backend).
                close_old_connections()
            stop.wait(self.poll_seconds)
        connection.close()


def declare_channel_queues(broker) -> list[str]:
    from .models import Channel

    names = [f"channel.{pk}" for pk in Channel.objects.values_list("pk", flat=True)]
    for name in names:
        broker.declare_queue(name)
    connection.close()
    return names


_broker = dramatiq.get_broker()
if not any(isinstance(m, ChannelQueues) for m in _broker.middleware):
    _broker.add_middleware(ChannelQueues())


# Issue 21: a database or broker outage is retried in time (smsplatform.broker.RetryThroughOutages),
# every 2 s at most, so the work resumes within seconds of the recovery instead of waiting for a sweep.
OUTAGE_RETRY = {"outage_retry_seconds": 300, "outage_backoff_ms": 2000}


@dramatiq.actor(queue_name="delivery", max_retries=5, **OUTAGE_RETRY)
def relay_outbox_entry_job(entry_id: int) -> None:
    """Fast path after an accept commits; the periodic relay covers it when this never runs."""
    outbox.relay_outbox(entry_ids=[entry_id])


@dramatiq.actor(
    queue_name="channel.default", max_retries=3, min_backoff=1000, time_limit=10 * 60 * 1000, **OUTAGE_RETRY
)
def send_messages_job(channel_id: int, tenant_id: int, message_ids: list[int]) -> None:
    """Submit one job's messages over a pooled bind of the channel (one job per bind at a time). Sent to `channel.<id>`."""
    sender.send_messages(channel_id=channel_id, tenant_id=tenant_id, message_ids=message_ids)


@dramatiq.actor(queue_name="callbacks", max_retries=0)
def deliver_callback_job(callback_id: int) -> None:
    callbacks.deliver_callback(callback_id=callback_id)


# --- periodic (delivery/schedule.py) ---------------------------------------------------------


def _locked(name: str, fn) -> None:
    with advisory_lock(name) as got:
        if got:
            fn()


@dramatiq.actor(queue_name="periodic", max_retries=0)
def relay_due_outbox_job() -> None:
    """Relay what the fast path missed, and scheduled sends whose time has come (定时发送)."""
    _locked("delivery.relay", lambda: [outbox.relay_outbox() for _ in range(5)])


@dramatiq.actor(queue_name="periodic", max_retries=0)
def requeue_stale_queued_job() -> None:
    _locked("delivery.requeue", outbox.requeue_stale_queued)


@dramatiq.actor(queue_name="periodic", max_retries=0)
def sweep_submissions_job() -> None:
    def run():
        sweeps.mark_stale_submissions()
        sweeps.reconcile_unknown_submissions()

    _locked("delivery.submissions", run)


@dramatiq.actor(queue_name="periodic", max_retries=0)
def apply_pending_receipts_job() -> None:
    _locked("delivery.pending_receipts", inbound.apply_pending_receipts)


@dramatiq.actor(queue_name="periodic", max_retries=0)
def replay_inbound_spool_job() -> None:
    """Issue 21: receipts and replies spooled on this machine during a database outage."""
    spool.replay()


@dramatiq.actor(queue_name="periodic", max_retries=0, time_limit=5 * 60 * 1000)
def query_stale_parts_job() -> None:
    """Issue 21: ask the SMSC (query_sm) about parts long without a receipt, where the channel allows it."""
    from . import query

    _locked("delivery.query_sm", query.query_stale_parts)


@dramatiq.actor(queue_name="periodic", max_retries=0)
def expire_receipts_job() -> None:
    _locked("delivery.expire_receipts", sweeps.expire_receipts)


@dramatiq.actor(queue_name="periodic", max_retries=0)
def purge_housekeeping_job() -> None:
    _locked("delivery.purge", sweeps.purge_housekeeping)


@dramatiq.actor(queue_name="periodic", max_retries=0)
def retry_due_callbacks_job() -> None:
    for callback_id in callbacks.due_callbacks():
        deliver_callback_job.send(callback_id)


@dramatiq.actor(queue_name="periodic", max_retries=0)
def evaluate_service_levels_job() -> None:
    """R-DLV-8: measure every service-level target; open, extend or mark recovered incidents."""
    from . import service_levels

    _locked("delivery.service_levels", service_levels.evaluate_service_levels)


# --- send log: exports, purge, erasure (R-AUD-1, R-AUD-2, R-AUD-4); services in delivery/sendlog/


@dramatiq.actor(queue_name="audit", max_retries=0, time_limit=6 * 3600 * 1000)
def run_export_job(job_id: int) -> None:
    """R-AUD-2: produce an export file in the background (chunks, bounded memory)."""
    from .sendlog.jobs import produce_export

    produce_export(job_id=job_id)


@dramatiq.actor(queue_name="audit", max_retries=0, time_limit=6 * 3600 * 1000)
def purge_send_log_job() -> None:
    """R-AUD-1: delete send-log rows past retention; refuses a retention below 180 days."""
    from .sendlog.retention import purge_send_log

    with advisory_lock("audit.purge_send_log") as got:
        if got:
            purge_send_log()


@dramatiq.actor(queue_name="audit", max_retries=3)
def process_due_erasures_job() -> None:
    """R-AUD-4: waiting erasure requests whose retention minimum has passed."""
    from .sendlog.retention import process_due_erasures

    with advisory_lock("audit.process_due_erasures") as got:
        if got:
            process_due_erasures()
