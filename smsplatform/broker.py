"""The dramatiq broker, from DRAMATIQ_BROKER_URL: redis://…, redis+socket://…, amqp://….

Set up by smsplatform.apps.PlatformConfig.ready(), before any actor module is imported.
"""

import dramatiq
from django.conf import settings
from django.db import close_old_connections
from dramatiq.middleware import Middleware

from .tenancy import reset_to_public


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
    return broker


def setup_broker() -> dramatiq.Broker:
    url = settings.DRAMATIQ_BROKER_URL or "redis://127.0.0.1:6379/0"
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    return broker
