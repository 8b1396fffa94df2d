"""Per-API-key rate limit: a fixed-window counter in the shared cache (Redis), 429 + Retry-After.

DRF's SimpleRateThrottle keeps a list of timestamps per key and rewrites it on every request
(not atomic, and heavy at thousands per minute); an atomic INCR per window is exact across
API processes and costs one round trip.

Issue 21: when Redis is down the limit is kept per process (the same window in memory) instead
of refusing every request: intake goes on through the outbox, which needs only PostgreSQL. For
a few seconds after a failure Redis is not asked at all, so an outage costs no request a timeout.
"""

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from smsplatform.outage import BROKER_ERRORS

from .authentication import ApiCaller

log = logging.getLogger(__name__)

PERIODS = {"second": 1, "minute": 60, "hour": 3600}
#: after a Redis error, count locally for this long before asking Redis again
REDIS_RETRY_SECONDS = 2.0


def parse_rate(rate: str) -> tuple[int, int]:
    count, period = rate.split("/")
    return int(count), PERIODS[period]


class LocalWindows:
    """The fallback: fixed-window counters in this process (one API process cannot exceed the
    limit; N processes together at most N times it, for as long as Redis is away)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._window = None
        self._lock = threading.Lock()
        self.redis_down_until = 0.0

    def incr(self, key: str, window: int) -> int:
        with self._lock:
            if window != self._window:  # a new window: the old counts cannot matter any more
                self._counts.clear()
                self._window = window
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


_local = LocalWindows()


def _shared_incr(key: str, period: int) -> int:
    cache.add(key, 0, timeout=period + 1)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=period + 1)
        return 1


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        if not isinstance(request.user, ApiCaller):
            return True
        limit, period = parse_rate(settings.API_RATE_LIMIT)
        now = time.time()
        window = int(now // period)
        key = f"ratelimit:{request.user.tenant.schema_name}:{request.user.api_key.access_key_id}:{window}"
        count = None
        if time.monotonic() >= _local.redis_down_until:
            try:
                count = _shared_incr(key, period)
            except BROKER_ERRORS as exc:
                log.warning("rate limiter: Redis unavailable (%s); limiting per process", exc)
                _local.redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        if count is None:
            count = _local.incr(key, window)
        self._wait = period - (now % period)
        return count <= limit

    def wait(self) -> float:
        return self._wait
