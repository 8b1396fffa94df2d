"""What counts as "a dependency of ours is down" (issue 21), for every process.

A database or broker outage is our fault, not the caller's, and it ends: web answers a coded
503 with Retry-After, workers retry the job in time, the listener spools what it cannot store.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError


def _broker_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = []
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # a RabbitMQ-only deployment
        pass
    from dramatiq.errors import BrokerConnectionError

    errors.append(BrokerConnectionError)
    return tuple(errors)


#: PostgreSQL unreachable, restarting, or our connection to it killed.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
#: Redis / RabbitMQ unreachable.
BROKER_ERRORS: tuple[type[BaseException], ...] = _broker_errors()
OUTAGE_ERRORS = DATABASE_ERRORS + BROKER_ERRORS


def is_outage(exc: BaseException) -> bool:
    """True for an outage error, also when it is the cause of another (a failed COMMIT after a
    failed query, an error raised while handling one)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OUTAGE_ERRORS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
