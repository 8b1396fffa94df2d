"""Per-process caches of configuration that rarely changes, with explicit invalidation.

Issue 17: a single send read the API key, tenant state, signature, template, settings,
prices, routing prefixes and rule-set version on every request (69 statements). Now each
process keeps them here and checks ONE row set (`smsplatform_configversion`, a counter per
kind) instead. Database triggers (smsplatform/migrations/0001) bump a kind's counter in the
very transaction that changes one of its tables, so:

* staleness bound: an API request re-reads the counters when it authenticates (`refresh()`),
  so it sees every configuration change committed before it started (0 s, same as reading
  the rows); other callers (workers, scripts) re-check at most every
  CONFIG_CACHE_MAX_AGE_SECONDS (default 1 s);
* a value is stored under the counter it was loaded with; a refresh that sees a new counter
  drops the whole bucket of that kind, so a load that raced a change is never kept.

Only configuration lives here: balances, holds, opt-outs, blocks, counters are always read.
Cache keys of tenant data carry the tenant id (conventions: no cache key without the tenant).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from django.conf import settings
from django.db import connection

# kind → the public tables whose changes invalidate it (the triggers are created from this).
KINDS: dict[str, tuple[str, ...]] = {
    "tenants": ("tenants_tenant", "tenants_apikey"),  # API key → tenant and its state (R-TEN-2/3)
    "filings": ("compliance_signature", "compliance_template", "compliance_templateversion"),  # R-CMP-1/2
    "compliance_settings": ("compliance_compliancesettings",),
    "countries": ("compliance_countryrule", "compliance_registeredsender"),  # R-CMP-9
    "frequency": ("compliance_frequencylimit",),  # R-CMP-8
    "rules": ("compliance_rulesetversion",),  # R-CMP-3 (the scanner checks its stamp on a miss)
    "prices": ("billing_price", "billing_plan", "billing_planassignment", "billing_account"),  # R-BIL-4
    "routing": ("delivery_carrierprefix", "delivery_provinceprefix"),  # R-DLV-2
}
# Columns whose change matters, where the table also takes hot-path writes that must NOT flush
# the cache (last use of a key, activity of a tenant, account balances).
WATCHED_COLUMNS: dict[str, tuple[str, ...]] = {
    "tenants_apikey": ("tenant_id", "access_key_id", "secret_hash", "expires_at", "revoked_at"),
    "tenants_tenant": ("state", "state_reason", "schema_name"),
    "billing_account": ("plan_id", "currency", "tenant_id"),
}

_MISSING = object()


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.versions: dict[str, int] = {}
        # kind → (version, {key: value}); replaced (never cleared in place) on a new version.
        self.buckets: dict[str, tuple[int, dict]] = {}
        self.checked_at = float("-inf")


_cache = _Cache()


def refresh() -> dict[str, int]:
    """Read the counters (one statement) and drop the buckets whose kind changed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT kind, version FROM public.smsplatform_configversion")
        versions = dict(cursor.fetchall())
    with _cache.lock:
        for kind, (version, _) in list(_cache.buckets.items()):
            if versions.get(kind, 0) != version:
                del _cache.buckets[kind]
        _cache.versions = versions
        _cache.checked_at = time.monotonic()
    return versions


def _bucket(kind: str) -> dict:
    if kind not in KINDS:
        raise KeyError(f"unknown config kind {kind!r}")
    max_age = getattr(settings, "CONFIG_CACHE_MAX_AGE_SECONDS", 1.0)
    if time.monotonic() - _cache.checked_at > max_age:
        refresh()
    with _cache.lock:
        version = _cache.versions.get(kind, 0)
        current = _cache.buckets.get(kind)
        if current is None or current[0] != version:
            current = _cache.buckets[kind] = (version, {})
        return current[1]


def get(kind: str, key: Hashable, loader: Callable[[], Any], *, keep_none: bool = True) -> Any:
    """The cached value of `key`, loading (and keeping) it on a miss. `loader` may return None;
    keep_none=False does not keep it (keys chosen by callers, e.g. unknown API key ids)."""
    bucket = _bucket(kind)
    value = bucket.get(key, _MISSING)
    if value is _MISSING:
        value = loader()
        if value is not None or keep_none:
            bucket[key] = value  # into the bucket of the version seen before loading
    return value


def get_many(kind: str, keys: Iterable[Hashable], loader: Callable[[list], dict]) -> dict:
    """Cached values of several keys; the missing ones in one `loader(missing) -> {key: value}`
    call (keys it leaves out are cached as None)."""
    bucket = _bucket(kind)
    found, missing = {}, []
    for key in keys:
        value = bucket.get(key, _MISSING)
        if value is _MISSING:
            missing.append(key)
        else:
            found[key] = value
    if missing:
        loaded = loader(missing)
        for key in missing:
            found[key] = bucket[key] = loaded.get(key)
    return found


def clear() -> None:
    """Forget everything (tests that write configuration with the triggers' effect rolled back)."""
    with _cache.lock:
        _cache.buckets.clear()
        _cache.versions = {}
        _cache.checked_at = float("-inf")
