"""One TPS limit per channel across every worker process and host (issue 10 item 5, R-DLV-3).

Each process keeps its own smoothing bucket (smpp.TokenBucket at the channel's rate), and every
token it hands out is first leased from a per-channel counter in the shared Redis, one counter
per wall-clock second: the processes together never take more than `tps_limit` in a second.
Leases come in small chunks (a tenth of the rate) so a busy channel costs ~10 Redis calls a
second per process, not one per part. When Redis cannot be reached the process falls back to its
own bucket alone (each process then may send the full rate: logged, and back to shared as soon
as Redis answers)."""

from __future__ import annotations

import logging
import math
import threading
import time

from smsplatform.shared_redis import shared_redis

from .smpp.pacing import TokenBucket

log = logging.getLogger(__name__)

# Grants min(wanted, limit - used) from this second's counter; returns the grant.
_LEASE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[1])
local grant = math.min(tonumber(ARGV[2]), limit - used)
if grant <= 0 then return 0 end
redis.call('INCRBY', KEYS[1], grant)
redis.call('EXPIRE', KEYS[1], 3)
return grant
"""


class ChannelRateLimiter:
    """try_take(now) like TokenBucket: 0.0 when a part may go now, else seconds to wait."""

    def __init__(self, *, channel_id: int, rate: float, clock=time.time) -> None:
        self.channel_id = channel_id
        self.rate = float(rate)
        self.local = TokenBucket(self.rate, history=100_000)
        self.chunk = max(1, math.ceil(self.rate / 10))
        self.clock = clock
        self._lock = threading.Lock()
        self._second = -1
        self._leased = 0
        self._shared_down_until = 0.0
        self._script = None

    @property
    def grants(self):  # diagnostics, as TokenBucket
        return self.local.grants

    def try_take(self, now: float) -> float:
        wait = self.local.wait_time(now)
        if wait > 0:
            return wait
        with self._lock:
            wall = self.clock()
            second = int(wall)
            if second != self._second:
                self._second, self._leased = second, 0
            if self._leased <= 0:
                granted = self._lease(second, wall)
                if granted is None:  # Redis unavailable: this process's own limit only
                    return self.local.try_take(now)
                if granted <= 0:
                    return max(0.001, second + 1 - wall)  # the channel's second is used up
                self._leased = granted
            wait = self.local.try_take(now)
            if wait == 0:
                self._leased -= 1
            return wait

    def _lease(self, second: int, wall: float) -> int | None:
        if wall < self._shared_down_until:
            return None
        client = shared_redis()
        if client is None:
            return None
        try:
            if self._script is None:
                self._script = client.register_script(_LEASE)
            key = f"sms:tps:{{{self.channel_id}}}:{second}"
            return int(self._script(keys=[key], args=[int(self.rate), self.chunk]))
        except Exception as exc:  # noqa: BLE001 - any Redis failure: fall back, retry in a few seconds
            log.warning("channel %s: shared TPS counter unavailable (%s); per-process limit", self.channel_id, exc)
            self._shared_down_until = wall + 5
            return None
