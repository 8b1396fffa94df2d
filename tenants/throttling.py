"""Per-API-key rate limit: a fixed-window counter in the shared cache (Redis), 429 + Retry-After.

DRF's SimpleRateThrottle keeps a list of timestamps per key and rewrites it on every request
(not atomic, and heavy at thousands per minute); an atomic INCR per window is exact across
API processes and costs one round trip.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from .authentication import ApiCaller

PERIODS = {"second": 1, "minute": 60, "hour": 3600}


def parse_rate(rate: str) -> tuple[int, int]:
    count, period = rate.split("/")
    return int(count), PERIODS[period]


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        if not isinstance(request.user, ApiCaller):
            return True
        limit, period = parse_rate(settings.API_RATE_LIMIT)
        now = time.time()
        window = int(now // period)
        key = f"ratelimit:{request.user.tenant.schema_name}:{request.user.api_key.access_key_id}:{window}"
        cache.add(key, 0, timeout=period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=period + 1)
            count = 1
        self._wait = period - (now % period)
        return count <= limit

    def wait(self) -> float:
        return self._wait
