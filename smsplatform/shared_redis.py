"""The Redis every process of the deployment shares (the cache's), for counters that must hold
across processes and hosts: per-channel TPS windows, per-recipient frequency limits."""

from __future__ import annotations

from django.core.cache import cache


def shared_redis():
    """The raw client of the Redis cache, or None when the cache is not Redis (local dev)."""
    backend = getattr(cache, "_cache", None)
    get_client = getattr(backend, "get_client", None)
    return get_client(write=True) if get_client is not None else None
