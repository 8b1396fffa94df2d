"""The dramatiq broker, from DRAMATIQ_BROKER_URL: redis://…, redis+socket://…, amqp://….

Imported (via smsplatform/__init__) before any actor module so actors bind to it.
"""

import dramatiq
from django.conf import settings


def build_broker(url: str) -> dramatiq.Broker:
    if url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    if url.startswith("redis+socket://"):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(unix_socket_path=url.removeprefix("redis+socket://"))
    if url.startswith("redis"):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url)
    raise ValueError(f"Unsupported DRAMATIQ_BROKER_URL: {url!r}")


def setup_broker() -> dramatiq.Broker:
    url = settings.DRAMATIQ_BROKER_URL or "redis://127.0.0.1:6379/0"
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    return broker
