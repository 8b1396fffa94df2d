"""Live state of each SMPP channel for the operators' Channel admin (R-DLV-3): binds up, submits/s
over the last minute, the queue waiting for it, its TPS limit and the rate the senders apply now.

Binds live inside the worker processes and submits are counted where their results are recorded,
so both are published to Redis (the shared cache) and read here:
- `publish_binds()` — each worker's idle poller, every few seconds: {host:pid → binds, rate, at};
  an entry older than BINDS_STALE_SECONDS is a worker that stopped (not a bind that is up);
- `note_submits()` — once per batch of submit results: one INCRBY on a per-second counter.
Without a Redis cache (tests on locmem, a bare `runserver`) the figures read "unknown".
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass

from django.core.cache import cache

BINDS_STALE_SECONDS = 30
WINDOW_SECONDS = 60
_PUBLISH_EVERY = 5.0
_last_publish = 0.0


def _redis():
    """The raw client of the Redis cache, or None when the cache is not Redis."""
    try:
        return cache._cache.get_client(write=True)  # django.core.cache.backends.redis.RedisCache
    except AttributeError:
        return None


def _key(*parts) -> str:
    return cache.make_key(":".join(["channel_live", *map(str, parts)]))


def note_submits(*, channel_id: int, results: list) -> None:
    """Count the parts the SMSC accepted (one Redis round trip per batch, never per part)."""
    ok = sum(1 for r in results if getattr(r, "command_status", None) == 0)
    client = _redis()
    if not ok or client is None:
        return
    key = _key(channel_id, "submits", int(time.time()))
    try:
        client.pipeline().incrby(key, ok).expire(key, WINDOW_SECONDS * 2).execute()
    except Exception:  # noqa: BLE001, S110 - a display counter must never fail a send
        pass


def publish_binds(holders: list, *, limiters: dict | None = None, force: bool = False) -> None:
    """This process's connected binds per channel (and its TPS bucket rate), at most every 5 s."""
    global _last_publish  # noqa: PLW0603 - one timestamp per process
    now = time.time()
    if not force and now - _last_publish < _PUBLISH_EVERY:
        return
    _last_publish = now
    client = _redis()
    if client is None:
        return
    counts: dict[int, int] = {}
    for holder in holders:
        session = getattr(holder, "session", None)
        counts.setdefault(holder.channel_id, 0)
        if session is not None and getattr(session, "connected", False):
            counts[holder.channel_id] += 1
    for channel_id in limiters or {}:
        counts.setdefault(channel_id, 0)
    me = f"{socket.gethostname()}:{os.getpid()}"
    try:
        pipe = client.pipeline()
        for channel_id, binds in counts.items():
            limiter = (limiters or {}).get(channel_id)
            value = json.dumps({"binds": binds, "rate": getattr(limiter, "rate", None), "at": now})
            pipe.hset(_key(channel_id, "binds"), me, value).expire(_key(channel_id, "binds"), BINDS_STALE_SECONDS * 4)
        pipe.execute()
    except Exception:  # noqa: BLE001, S110 - display only
        pass


@dataclass(frozen=True)
class ChannelLive:
    binds_up: int | None
    workers: int | None
    submits_per_second: float | None
    queue_depth: int | None
    tps_limit: int | None
    current_rate: float | None
    down: bool
    last_error: str


def queue_depth(queue_name: str) -> int | None:
    """Messages waiting in the channel's dramatiq queue (Redis or RabbitMQ broker)."""
    import dramatiq

    broker = dramatiq.get_broker()
    try:
        if hasattr(broker, "get_queue_message_counts"):  # RabbitMQ: (queued, delayed, dead-lettered)
            queued, delayed, _ = broker.get_queue_message_counts(queue_name)
            return queued + delayed
        if broker.__class__.__name__ == "RedisBroker":
            return int(broker.do_qsize(queue_name))
    except Exception:  # noqa: BLE001 - the broker may be away; the page still answers
        return None
    return None


def channel_live(channel) -> ChannelLive:
    from django.utils import timezone

    client = _redis()
    binds = workers = rate = per_second = None
    if client is not None:
        try:
            now = time.time()
            entries = [json.loads(v) for v in client.hvals(_key(channel.pk, "binds"))]
            fresh = [e for e in entries if now - e["at"] < BINDS_STALE_SECONDS]
            binds, workers = sum(e["binds"] for e in fresh), len(fresh)
            rates = [e["rate"] for e in fresh if e.get("rate")]
            rate = min(rates) if rates else None
            second = int(now)
            keys = [_key(channel.pk, "submits", s) for s in range(second - WINDOW_SECONDS + 1, second + 1)]
            per_second = round(sum(int(v) for v in client.mget(keys) if v) / WINDOW_SECONDS, 2)
        except Exception:  # noqa: BLE001 - Redis away: show unknown, not a 500
            binds = workers = rate = per_second = None
    return ChannelLive(
        binds_up=binds,
        workers=workers,
        submits_per_second=per_second,
        queue_depth=queue_depth(channel.queue_name),
        tps_limit=channel.tps_limit,
        current_rate=rate,
        down=bool(channel.down_until and channel.down_until > timezone.now()),
        last_error=channel.last_error,
    )
