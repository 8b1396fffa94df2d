"""The bind budget of an SMSC account across every process and host (issue 20 item 1, R-DLV-3).

A carrier account allows a fixed number of binds at once (Channel.max_binds); one bind more is
refused (ESME_RBINDFAIL) and, before this, marked the whole channel down. Every process asks here
before it binds: a lease is a member of a sorted set in the shared Redis, per account (host,
port, system_id), scored with its expiry. A heartbeat thread renews this process's leases; a
process that dies stops renewing and its leases expire after LEASE_SECONDS, so its binds return
to the budget without anyone cleaning up.

Roles: "tx" (a worker's bind: transceiver, or transmitter in split mode) and "rx" (the
listener's). One bind of the budget is kept for the receiving side when the account has two or
more, and at most one listener bind is leased per account: senders can never starve the listener
(in split mode the receiver is the only way receipts come in). An account of one bind in
transceiver mode is the senders' alone; their idle poller reads receipts (`listener_binds`).

When Redis cannot be reached the budget is not shared: every lease is granted (`shared=False`)
and each process holds at most Channel.bind_count binds, as before (logged; shared again as
soon as Redis answers).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from smsplatform.shared_redis import shared_redis

log = logging.getLogger(__name__)

#: a lease not renewed for this long is gone (its process died or hangs)
LEASE_SECONDS = 15.0
#: how often the heartbeat renews this process's leases
RENEW_EVERY = LEASE_SECONDS / 3

# KEYS[1] the account's set; ARGV: now, expiry, limit, lease id, role ("tx"/"rx"), tx cap.
# Drops expired leases, grants (1) within the limits or refuses (0). A lease that is still there
# is renewed whatever the count (it is one of the binds counted already).
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('EXPIRE', KEYS[1], 3600)
  return 1
end
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
if #members >= tonumber(ARGV[3]) then return 0 end
local same = 0
for _, m in ipairs(members) do
  if string.sub(m, 1, 3) == ARGV[5] .. ':' then same = same + 1 end
end
if same >= tonumber(ARGV[6]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], 3600)
return 1
"""


@dataclass(eq=False)
class BindLease:
    key: str  # the account's set in Redis ("" when not shared)
    lease_id: str
    limit: int
    tx_cap: int
    shared: bool  # False: Redis was unavailable, only the per-process bind_count applies
    ttl: float = LEASE_SECONDS


def account_key(*, host: str, port: int, system_id: str) -> str:
    digest = hashlib.sha1(f"{host.lower()}:{port}:{system_id}".encode(), usedforsecurity=False).hexdigest()[:16]
    return f"sms:binds:{{{digest}}}"


def role_caps(*, max_binds: int, mode: str) -> tuple[int, int]:
    """(senders' cap, listener's cap) of an account with `max_binds` binds in `mode`."""
    if max_binds >= 2:
        return max_binds - 1, 1  # one bind kept for the receiving side
    if mode == "split":
        return 0, 0  # refused by the model (channel_split_needs_two_binds)
    return 1, 0  # one transceiver bind: the senders', read by their idle poller


def listener_binds(channel) -> bool:
    """Whether the listener binds to this channel at all (see role_caps)."""
    if not channel.max_binds:
        return True
    return role_caps(max_binds=channel.max_binds, mode=channel.bind_mode)[1] > 0


_held: dict[str, BindLease] = {}
_held_lock = threading.Lock()
_heartbeat: threading.Thread | None = None
_script = None
_down_until = 0.0


def _redis_script():
    global _script
    client = shared_redis()
    if client is None:
        return None
    if _script is None:
        _script = client.register_script(_ACQUIRE)
    return _script


def _run(lease: BindLease) -> bool | None:
    """The acquire script for `lease`: True granted, False refused, None Redis unavailable."""
    global _down_until
    if time.monotonic() < _down_until:
        return None
    try:
        script = _redis_script()
        if script is None:
            return None
        now = time.time()
        role = lease.lease_id[:2]
        return bool(
            script(keys=[lease.key], args=[now, now + lease.ttl, lease.limit, lease.lease_id, role, lease.tx_cap])
        )
    except Exception as exc:  # noqa: BLE001 - any Redis failure: per-process budget for a while
        log.warning("bind budget: shared Redis unavailable (%s); per-process bind_count only", exc)
        _down_until = time.monotonic() + 5
        return None


def acquire(*, channel, role: str, ttl: float = LEASE_SECONDS) -> BindLease | None:
    """A lease for one more bind of `channel`'s account as `role` ("tx" or "rx"), or None when
    the account's binds are all leased. Channels without max_binds are not budgeted."""
    if role not in ("tx", "rx"):
        raise ValueError("role is 'tx' or 'rx'")
    lease_id = f"{role}:{uuid.uuid4().hex}"
    if not channel.max_binds:
        return BindLease(key="", lease_id=lease_id, limit=0, tx_cap=0, shared=False, ttl=ttl)
    tx_cap, rx_cap = role_caps(max_binds=channel.max_binds, mode=channel.bind_mode)
    lease = BindLease(
        key=account_key(host=channel.host, port=channel.port, system_id=channel.system_id),
        lease_id=lease_id,
        limit=channel.max_binds,
        tx_cap=tx_cap if role == "tx" else rx_cap,
        shared=True,
        ttl=ttl,
    )
    granted = _run(lease)
    if granted is None:
        lease.shared = False
        return lease
    if not granted:
        return None
    with _held_lock:
        _held[lease_id] = lease
    _start_heartbeat()
    return lease


def release(lease: BindLease | None) -> None:
    """Give the bind back to the budget (after the unbind, or when the bind failed)."""
    if lease is None:
        return
    with _held_lock:
        _held.pop(lease.lease_id, None)
    if not lease.shared:
        return
    client = shared_redis()
    try:
        if client is not None:
            client.zrem(lease.key, lease.lease_id)
    except Exception as exc:  # noqa: BLE001 - it expires by itself within its ttl
        log.warning("bind budget: cannot release %s (%s); it expires in %ss", lease.lease_id, exc, lease.ttl)


def renew_all() -> int:
    """Renew every lease this process holds (the heartbeat calls it). Returns how many."""
    with _held_lock:
        leases = list(_held.values())
    renewed = 0
    for lease in leases:
        if _run(lease):
            renewed += 1
    return renewed


def held() -> list[BindLease]:
    with _held_lock:
        return list(_held.values())


def _beat() -> None:
    while True:
        time.sleep(RENEW_EVERY)
        try:
            renew_all()
        except Exception:  # the heartbeat must never die: leases would expire under live binds
            log.exception("bind budget heartbeat failed")


def _start_heartbeat() -> None:
    global _heartbeat
    with _held_lock:
        if _heartbeat is None or not _heartbeat.is_alive():
            _heartbeat = threading.Thread(target=_beat, name="bind-budget-heartbeat", daemon=True)
            _heartbeat.start()
