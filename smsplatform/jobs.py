"""Enqueue a dramatiq job by actor name, so a service never imports the actors module that
imports it (services ↔ actors would be an import circle; conventions.md, "Imports run one way").

    jobs.enqueue("send_notice_email_job", queue="notices", delivery_id=7)

The worker declares every actor (smsplatform.worker imports each app's actors module);
tests/test_jobs.py checks that every enqueue() call in the code names a declared actor on its
own queue, so a typo cannot silently drop work.
"""

from __future__ import annotations

import dramatiq


def enqueue(actor_name: str, *args, queue: str, delay_ms: int | None = None, **kwargs) -> dramatiq.Message:
    """Put one job on `queue` for `actor_name` (after `delay_ms`, if given) and return it."""
    broker = dramatiq.get_broker()
    broker.declare_queue(queue)
    message = dramatiq.Message(queue_name=queue, actor_name=actor_name, args=args, kwargs=kwargs, options={})
    return broker.enqueue(message, delay=delay_ms)
