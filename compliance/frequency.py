"""R-CMP-8: per-recipient frequency limits ("no repeated or looping sends that disturb a
recipient"), per tenant and message type, enforced at intake on every API (ours and the Alibaba
Cloud compatible one, docs/alibaba.md).

Cheap by design: one indexed query for the limits and ONE Redis round trip per request (a Lua
script checks and counts every recipient of the batch atomically, so two API processes cannot
both let the same number through). A window starts at the recipient's first counted send and
its counter expires with it. Refused recipients are not counted.

Limits: FrequencyLimit rows. A platform default per message type (tenant empty; migration 0007
seeds verification codes at 1 a minute, 5 an hour, 10 a day) and a tenant's own row replacing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q

from smsplatform.shared_redis import shared_redis
from tenants.models import Tenant
from tenants.services import Actor, record_operation

from .models import FrequencyLimit

REASON = "frequency_limited"  # the refusal code on our API; isv.BUSINESS_LIMIT_CONTROL on Alibaba's
WINDOWS = (("per_minute", 60, "minute"), ("per_hour", 3600, "hour"), ("per_day", 86400, "day"))

# KEYS: `windows` keys per recipient, recipient after recipient. ARGV[1] = windows per recipient,
# then the limit of each window, then its length in seconds. Returns the 0-based indexes of the
# refused recipients; the others are counted in every window.
_CHECK_AND_COUNT = """
local n = tonumber(ARGV[1])
local refused = {}
for i = 1, #KEYS, n do
  local ok = true
  for w = 0, n - 1 do
    local count = tonumber(redis.call('GET', KEYS[i + w]) or '0')
    if count >= tonumber(ARGV[2 + w]) then ok = false break end
  end
  if ok then
    for w = 0, n - 1 do
      if redis.call('INCR', KEYS[i + w]) == 1 then redis.call('EXPIRE', KEYS[i + w], ARGV[2 + n + w]) end
    end
  else
    refused[#refused + 1] = (i - 1) / n
  end
end
return refused
"""


@dataclass(frozen=True)
class Limits:
    message_type: str
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None
    tenant_specific: bool = False

    def windows(self) -> list[tuple[str, int, int, str]]:
        """(field, seconds, limit, unit) of the windows that have a limit."""
        out = []
        for name, seconds, unit in WINDOWS:
            limit = getattr(self, name)
            if limit is not None:
                out.append((name, seconds, limit, unit))
        return out

    def describe(self) -> str:
        return ", ".join(f"{limit} a {unit}" for _, _, limit, unit in self.windows()) or "no limit"


def _limits(row: FrequencyLimit) -> Limits:
    return Limits(
        message_type=row.message_type,
        per_minute=row.per_minute,
        per_hour=row.per_hour,
        per_day=row.per_day,
        tenant_specific=row.tenant_id is not None,
    )


def limits_for(*, tenant: Tenant, message_type: str) -> Limits | None:
    """The limits in force for one tenant and type (its own row, else the platform default)."""
    rows = list(FrequencyLimit.objects.filter(Q(tenant=tenant) | Q(tenant__isnull=True), message_type=message_type))
    rows.sort(key=lambda r: r.tenant_id is None)  # the tenant's own row first
    return _limits(rows[0]) if rows else None


def effective_limits(*, tenant: Tenant) -> list[Limits]:
    """Every type with a limit for this tenant (what the tenant API and the admin show)."""
    chosen: dict[str, FrequencyLimit] = {}
    for row in FrequencyLimit.objects.filter(Q(tenant=tenant) | Q(tenant__isnull=True)):
        if row.message_type not in chosen or row.tenant_id is not None:
            chosen[row.message_type] = row
    return [_limits(chosen[t]) for t in sorted(chosen)]


@dataclass
class Reservation:
    """The outcome of one intake check: refused indexes, and the counted keys (to give back when
    the request does not commit)."""

    refused: set[int] = field(default_factory=set)
    detail: str = ""
    counted_keys: list[str] = field(default_factory=list)

    def release(self) -> None:
        """Un-count what this request counted (its transaction rolled back: nothing was sent)."""
        if not self.counted_keys:
            return
        client = shared_redis()
        if client is not None:
            pipe = client.pipeline(transaction=False)
            for key in self.counted_keys:
                pipe.decr(key)
            pipe.execute()
        else:
            for key in self.counted_keys:
                try:
                    cache.decr(key)
                except ValueError:
                    pass
        self.counted_keys = []


def _key(tenant_id: int, message_type: str, number: str, window: str) -> str:
    # {tenant} is a Redis hash tag: one tenant's keys stay in one slot of a cluster.
    return f"sms:freq:{{{tenant_id}}}:{message_type}:{number}:{window}"


def reserve(*, tenant: Tenant, message_type: str, numbers: list[str]) -> Reservation:
    """Check and count a request's recipients (in order) against the limits: those over a limit
    come back in `refused` and are not counted (R-CMP-8)."""
    if not numbers or not getattr(settings, "COMPLIANCE_FREQUENCY_LIMITS", True):
        return Reservation()
    from smsplatform import config_cache  # issue 17: per process, "frequency" counter

    limits = config_cache.get(
        "frequency", (tenant.pk, message_type), lambda: limits_for(tenant=tenant, message_type=message_type)
    )
    windows = limits.windows() if limits else []
    if not windows:
        return Reservation()
    keys = [_key(tenant.pk, message_type, number, name) for number in numbers for name, *_ in windows]
    client = shared_redis()
    if client is not None:
        args = [len(windows), *(limit for _, _, limit, _ in windows), *(seconds for _, seconds, _, _ in windows)]
        refused = {int(i) for i in client.eval(_CHECK_AND_COUNT, len(keys), *keys, *args)}
    else:
        refused = _check_and_count_locally(keys, windows)
    n = len(windows)
    counted = [k for i in range(len(numbers)) if i not in refused for k in keys[i * n : (i + 1) * n]]
    detail = f"Too many {message_type} messages to this number (limit: {limits.describe()}) (R-CMP-8)."
    return Reservation(refused=refused, detail=detail, counted_keys=counted)


def _check_and_count_locally(keys: list[str], windows: list) -> set[int]:
    """The same rule without Redis (one process, development only)."""
    n, refused = len(windows), set()
    for i in range(len(keys) // n):
        mine = keys[i * n : (i + 1) * n]
        if any((cache.get(k) or 0) >= limit for k, (_, _, limit, _) in zip(mine, windows, strict=True)):
            refused.add(i)
            continue
        for k, (_, seconds, _, _) in zip(mine, windows, strict=True):
            if not cache.add(k, 1, timeout=seconds):
                cache.incr(k)
    return refused


# --- operators' changes (admin) ------------------------------------------------------------------

LIMIT_FIELDS = ("per_minute", "per_hour", "per_day")


def save_frequency_limit(*, limit: FrequencyLimit, actor: Actor, reason: str = "") -> FrequencyLimit:
    """Create or change a limit row, recorded in the operation trail (R-CMP-8, R-AUD-3)."""
    with transaction.atomic():
        before = None
        if limit.pk:
            old = FrequencyLimit.objects.select_for_update().get(pk=limit.pk)
            before = {"message_type": old.message_type, **{f: getattr(old, f) for f in LIMIT_FIELDS}}
        limit.save()
        record_operation(
            actor=actor,
            action="compliance.frequency_limit.save",
            tenant=limit.tenant,
            obj=limit,
            reason=reason,
            before=before,
            after={"message_type": limit.message_type, **{f: getattr(limit, f) for f in LIMIT_FIELDS}},
        )
    return limit


def delete_frequency_limits(*, limit_ids: list[int], actor: Actor) -> int:
    with transaction.atomic():
        rows = list(FrequencyLimit.objects.select_for_update().filter(pk__in=limit_ids))
        for row in rows:
            record_operation(
                actor=actor,
                action="compliance.frequency_limit.delete",
                tenant=row.tenant,
                obj=row,
                before={"message_type": row.message_type, **{f: getattr(row, f) for f in LIMIT_FIELDS}},
            )
        FrequencyLimit.objects.filter(pk__in=[r.pk for r in rows]).delete()
    return len(rows)
