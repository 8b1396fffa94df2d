"""Issue 20 item 1 (R-DLV-3): the bind budget of an SMSC account, shared through Redis by every
process and host (delivery/binds.py). Real Redis; no database."""

import time
import uuid
from types import SimpleNamespace

import pytest

from delivery import binds


def channel(*, max_binds=2, mode="transceiver", system_id=None):
    return SimpleNamespace(
        host="127.0.0.1",
        port=2775,
        system_id=system_id or f"b{uuid.uuid4().hex[:10]}",  # an account of its own per test
        max_binds=max_binds,
        bind_mode=mode,
    )


@pytest.fixture(autouse=True)
def _shared_redis_up():
    binds._down_until = 0.0
    yield
    for lease in binds.held():
        binds.release(lease)


def test_two_bind_account_one_sender_bind_and_one_listener_bind_r_dlv_3():
    """Senders never take the bind kept for the receiving side; one listener bind per account."""
    ch = channel(max_binds=2)
    first = binds.acquire(channel=ch, role="tx")
    assert first is not None
    assert first.shared
    assert binds.acquire(channel=ch, role="tx") is None  # the second bind is the listener's
    rx = binds.acquire(channel=ch, role="rx")
    assert rx is not None
    assert binds.acquire(channel=ch, role="rx") is None
    binds.release(first)
    assert binds.acquire(channel=ch, role="tx") is not None  # given back, taken again


def test_larger_account_senders_share_all_but_one_bind_r_dlv_3():
    ch = channel(max_binds=4)
    senders = [binds.acquire(channel=ch, role="tx") for _ in range(4)]
    assert [s is not None for s in senders] == [True, True, True, False]
    assert binds.acquire(channel=ch, role="rx") is not None
    assert binds.acquire(channel=ch, role="rx") is None


def test_one_bind_transceiver_account_is_the_senders_alone_r_dlv_3():
    ch = channel(max_binds=1)
    assert not binds.listener_binds(ch)
    assert binds.acquire(channel=ch, role="tx") is not None
    assert binds.acquire(channel=ch, role="tx") is None
    assert binds.listener_binds(channel(max_binds=None))


def test_a_dead_process_lease_expires_and_a_live_one_is_renewed_r_dlv_3():
    """A process that dies stops its heartbeat: its binds go back to the budget after the ttl;
    a live process's heartbeat keeps its lease past the ttl."""
    ch = channel(max_binds=3)
    dead = binds.acquire(channel=ch, role="tx", ttl=0.3)
    live = binds.acquire(channel=ch, role="tx", ttl=0.3)
    assert dead is not None
    assert live is not None
    assert binds.acquire(channel=ch, role="tx") is None
    with binds._held_lock:
        binds._held.pop(dead.lease_id)  # the dead process's heartbeat is gone
    for _ in range(4):
        time.sleep(0.15)
        binds.renew_all()
    replacement = binds.acquire(channel=ch, role="tx")
    assert replacement is not None
    assert binds.acquire(channel=ch, role="tx") is None  # the live lease still counts


def test_redis_down_falls_back_to_the_per_process_limit_r_dlv_3(monkeypatch):
    monkeypatch.setattr(binds, "shared_redis", lambda: None)
    monkeypatch.setattr(binds, "_script", None)
    ch = channel(max_binds=1)
    leases = [binds.acquire(channel=ch, role="tx") for _ in range(3)]
    assert all(lease is not None and not lease.shared for lease in leases)


def test_channel_without_a_limit_is_not_budgeted():
    lease = binds.acquire(channel=channel(max_binds=None), role="tx")
    assert lease is not None
    assert not lease.shared
