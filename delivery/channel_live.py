"""Live state of each SMPP channel for the operators' Channel admin (R-DLV-3): binds up, submits/s
over the last minute, the queue waiting for it, its TPS limit and the rate the senders apply now.

The figures are counted once, in the Prometheus series of smsplatform/metrics.py (binds, channel
rate, parts accepted). Those live in each worker process, so `publish_figures()` — run by each
worker's idle poller, at most every 5 s — copies this process's values to Redis (the shared cache)
for the page to add up across processes and hosts:
- {host:pid → binds, rate, at} per channel; an entry older than BINDS_STALE_SECONDS is a worker
  that stopped (not a bind that is up);
- the parts accepted since the last publish, added to a per-second counter.
Without a Redis cache (tests on locmem, a bare `runserver`) the figures read "unknown".
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass

from django.core.cache import cache

from smsplatform import metrics
from smsplatform.shared_redis import shared_redis

BINDS_STALE_SECONDS = 30
WINDOW_SECONDS = 60
_PUBLISH_EVERY = 5.0
_last_publish = 0.0
_accepted_published: dict[int, int] = {}  # per channel: this process's accepted parts already in Redis


def _key(*parts) -> str:
    return cache.make_key(":".join(["channel_live", *map(str, parts)]))


def publish_figures(*, force: bool = False) -> None:
    """This process's binds, rate and newly accepted parts per channel (one Redis round trip)."""
    global _last_publish  # noqa: PLW0603 - one timestamp per process
    now = time.time()
    if not force and now - _last_publish < _PUBLISH_EVERY:
        return
    _last_publish = now
    client = shared_redis()
    if client is None:
        return
    figures = metrics.channel_figures()
    me = f"{socket.gethostname()}:{os.getpid()}"
    try:
        pipe = client.pipeline()
        for channel_id, figure in figures.items():
            accepted = figure["accepted"] - _accepted_published.get(channel_id, 0)
            if accepted > 0:
                submits = _key(channel_id, "submits", int(now))
                pipe.incrby(submits, accepted).expire(submits, WINDOW_SECONDS * 2)
            value = json.dumps({"binds": figure["binds"], "rate": figure["rate"], "at": now})
            pipe.hset(_key(channel_id, "binds"), me, value).expire(_key(channel_id, "binds"), BINDS_STALE_SECONDS * 4)
        pipe.execute()
    except Exception:  # noqa: BLE001 - display only: counted again at the next publish
        return
    _accepted_published.update((channel_id, figure["accepted"]) for channel_id, figure in figures.items())


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

    client = shared_redis()
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
