"""Pacing of an SMPP client: the TPS token bucket (shared by the binds of a channel in a process)
and the reconnect back-off delays (R-DLV-3). Pure: the clock is passed in.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque


class TokenBucket:
    """TPS limiter: `rate` tokens per second, at most `burst` saved up. Pure (clock passed in).
    Thread-safe: one bucket may be shared by every bind of a channel in a process (the limit is
    the channel's, not each bind's); nobody sleeps holding its lock."""

    def __init__(self, rate: float, burst: float | None = None, *, now: float | None = None, history: int = 0) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate / 20)
        self.tokens = self.burst
        self.stamp = time.monotonic() if now is None else now
        self.granted = 0
        #: monotonic times of the last `history` grants (for tests/diagnostics)
        self.grants: deque[float] = deque(maxlen=history or None) if history else deque(maxlen=0)
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0.0: available now)."""
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> bool:
        """Take a token if one is available."""
        return self.try_take(now) == 0.0

    def try_take(self, now: float) -> float:
        """Take a token if one is available (0.0), else the seconds to wait before asking again:
        check and take are one step, so binds sharing the bucket never both get the last token."""
        with self._lock:
            wait = self.wait_time(now)
            if wait > 0:
                return wait
            self.tokens -= 1.0
            self.granted += 1
            if self.grants.maxlen:
                self.grants.append(now)
            return 0.0


def backoff_delays(
    max_attempts: int, base_delay: float, max_delay: float = 30.0, jitter: float = 0.0, rng: random.Random | None = None
) -> list[float]:
    """Delays slept between connection attempts: base, 2·base, 4·base… capped at max_delay,
    each stretched by up to `jitter` (fraction) at random. max_attempts attempts → n-1 delays."""
    rng = rng or random.Random()
    delays = []
    for i in range(max(0, max_attempts - 1)):
        d = min(max_delay, base_delay * (2**i))
        if jitter:
            d *= 1 + jitter * rng.random()
        delays.append(d)
    return delays
