"""The dramatiq broker, from DRAMATIQ_BROKER_URL: redis://…, redis+socket://…, amqp://….

Set up by smsplatform.apps.PlatformConfig.ready(), before any actor module is imported.
"""

import logging
import time

import dramatiq
from django.conf import settings
from django.db import close_old_connections
from dramatiq.middleware import Middleware

from .outage import is_outage
from .tenancy import reset_to_public

log = logging.getLogger("smsplatform.outage")


class TenantIsolationMiddleware(Middleware):
    """A job starts and ends in the public schema with a usable DB connection.

    Actors receive tenant ids and enter the schema themselves (django_tenants.utils.tenant_context);
    this makes sure no worker thread carries one tenant's schema into the next job.
    """

    def before_process_message(self, broker, message):
        close_old_connections()
        reset_to_public()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        reset_to_public()
        close_old_connections()

    after_skip_message = after_process_message


class RetryThroughOutages(Middleware):
    """Issue 21: an actor declared with `outage_retry_seconds=N` is retried for N seconds of a
    database or broker outage, every `outage_backoff_ms` at most, instead of running out of its
    retry COUNT within seconds (a channel job's 3 retries were spent in ~9 s, and its messages
    waited for the stale-queue sweep). Other errors keep the actor's max_retries.

    Runs before dramatiq's Retries (after_* hooks run in reverse order): it raises this
    message's max_retries just enough for one more retry while the outage window lasts."""

    actor_options = {"outage_retry_seconds", "outage_backoff_ms"}

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is None:
            return
        actor = broker.get_actor(message.actor_name)
        window = actor.options.get("outage_retry_seconds")
        if not window:
            return
        options = message.options
        if not is_outage(exception):
            # Back to the actor's own retry policy (a count) for any other error.
            options.pop("outage_since", None)
            options.pop("max_retries", None)
            options.pop("min_backoff", None)
            options.pop("max_backoff", None)
            return
        now_ms = int(time.time() * 1000)
        since = options.setdefault("outage_since", now_ms)
        if now_ms - since >= window * 1000:
            log.error("%s: still failing after %ss of outage (%s); giving up", message.actor_name, window, exception)
            options["max_retries"] = 0
            return
        backoff = actor.options.get("outage_backoff_ms", 2000)
        options["max_retries"] = options.get("retries", 0) + 1
        options["min_backoff"] = min(500, backoff)
        options["max_backoff"] = backoff
        log.warning(
            "%s: outage (%s: %s); retrying for %ds more",
            message.actor_name,
            type(exception).__name__,
            str(exception).splitlines()[0][:200] if str(exception) else "",
            window - (now_ms - since) // 1000,
        )


def build_broker(url: str) -> dramatiq.Broker:
    if url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    elif url.startswith("redis+socket://"):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(unix_socket_path=url.removeprefix("redis+socket://"))
    elif url.startswith("redis"):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)
    else:
        raise ValueError(f"Unsupported DRAMATIQ_BROKER_URL: {url!r}")
    broker.add_middleware(TenantIsolationMiddleware())
    broker.add_middleware(RetryThroughOutages())
    return broker


def setup_broker() -> dramatiq.Broker:
    url = settings.DRAMATIQ_BROKER_URL or "redis://127.0.0.1:6379/0"
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    return broker
