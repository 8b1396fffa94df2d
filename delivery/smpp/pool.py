"""The per-process bind pool (R-DLV-3): at most Channel.bind_count SMPP sessions per channel and\nprocess, each holding a lease of the account's bind budget (delivery/binds.py), and the TPS\nlimiter per channel shared across processes (delivery/throttle.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from django.conf import settings

from smsplatform import crypto, metrics

from ..models import Channel

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ChannelSession:
    """One SmppSession (a bind) of the pool, plus the results it has collected.

    `lock` is held by the job using it for the job's whole run; between jobs the worker's idle
    poller takes it for a moment to read the bind (receipts, replies, enquire_link), so an idle
    bind never sits on deliver_sm. The session is never used by two threads at once."""

    channel_id: int
    fingerprint: tuple
    session: object = None
    results: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    receipt_ids: list = field(default_factory=list)
    lease: object = None  # binds.BindLease: this bind's place in the account's budget

    def on_inbound(self, pdu) -> None:
        """deliver_sm on this bind: stored before it is answered (an exception makes the session
        answer ESME_RX_T_APPN, so the SMSC delivers it again); receipts are applied in a batch
        by apply_inbound() once the job's results are recorded."""
        from ..inbound import handle_inbound
        from ..spool import store_or_spool

        # Issue 21: with the database down it is spooled locally and acknowledged (delivery/spool.py).
        stored = store_or_spool(
            channel_id=self.channel_id,
            pdus=[pdu],
            store=lambda: handle_inbound(channel_id=self.channel_id, pdu=pdu) or True,
        )
        if stored and pdu.is_receipt and pdu.receipt is not None:
            self.receipt_ids.append(pdu.receipt.message_id)

    def on_inbound_batch(self, pdus: list) -> list[int | None]:
        """Every deliver_sm collected on the bind: receipts stored with one INSERT before any of
        them is answered (spool.handle_inbound_batch); their ids are applied after the job."""
        from ..spool import handle_inbound_batch, store_or_spool

        # Issue 21: with the database down they are spooled locally and acknowledged (delivery/spool.py).
        stored = store_or_spool(
            channel_id=self.channel_id,
            pdus=pdus,
            store=lambda: handle_inbound_batch(channel_id=self.channel_id, pdus=pdus),
        )
        if stored is None:
            return [None] * len(pdus)
        receipt_ids, answers = stored
        self.receipt_ids.extend(receipt_ids)
        return answers

    def take_receipt_ids(self) -> list[str]:
        ids = list(self.receipt_ids)
        del self.receipt_ids[: len(ids)]
        return ids

    def apply_inbound(self) -> int:
        from ..inbound import apply_pending_receipts

        ids = self.take_receipt_ids()
        return apply_pending_receipts(carrier_ids=ids) if ids else 0

    def take_results(self) -> list:
        taken = list(self.results)  # the session appends to this very list: clear it in place
        del self.results[: len(taken)]
        return taken


class BindsBusy(Exception):
    """Every bind this process may open to the channel is in use (Channel.bind_count), or the
    account's budget (Channel.max_binds, delivery/binds.py) has none left for this process."""


#: a bind the SMSC refused although the budget allowed it marks the channel down this long only
BIND_REFUSED_DOWN_SECONDS = 5


class SessionRegistry:
    """Long-lived binds of this worker process (transceiver, or transmitter in split mode): per
    channel a pool of at most `Channel.bind_count` sessions, each holding a lease of the account's
    bind budget (delivery/binds.py: never more binds than Channel.max_binds across processes and
    hosts). A job takes a free session (its lock) for its whole run — a session is only ever used
    by one thread at a time (smpplib is not thread-safe) — opens a new bind while the pool is
    below bind_count and the budget grants a lease, and otherwise waits for one to be free."""

    _pools: ClassVar[dict[int, list[ChannelSession]]] = {}
    _pools_lock = threading.Lock()
    _limiters: ClassVar[dict[int, object]] = {}

    @classmethod
    def limiter_for(cls, channel: Channel):
        """The channel's TPS limiter in this process, shared by all its binds and, through Redis,
        with every other process and host (issue 10: Channel.tps_limit is the channel's rate)."""
        from ..throttle import ChannelRateLimiter

        if not channel.tps_limit:
            return None
        with cls._pools_lock:
            limiter = cls._limiters.get(channel.pk)
            if limiter is None or limiter.rate != float(channel.tps_limit):
                limiter = cls._limiters[channel.pk] = ChannelRateLimiter(
                    channel_id=channel.pk, rate=float(channel.tps_limit)
                )
                metrics.set_channel_rate(channel.pk, limiter.rate)
            return limiter

    @staticmethod
    def fingerprint(channel: Channel) -> tuple:
        return (
            channel.host,
            channel.port,
            channel.system_id,
            channel.password,
            channel.system_type,
            channel.source_addr,
            channel.window_size,
            channel.tps_limit,
            channel.bind_mode,
        )

    @classmethod
    def acquire(cls, channel: Channel, *, wait: float | None = None) -> ChannelSession:
        """A connected session of `channel`, locked for the caller; release() it when done."""
        from .. import binds
        from .session import SmppSession

        wait = settings.DELIVERY_BIND_WAIT_SECONDS if wait is None else wait
        fingerprint = cls.fingerprint(channel)
        deadline = time.monotonic() + wait
        next_lease = 0.0  # a used-up budget is asked again every 0.2 s, not in a tight loop
        while True:
            stale, chosen, new = [], None, False
            with cls._pools_lock:
                pool = cls._pools.setdefault(channel.pk, [])
                for holder in list(pool):
                    if holder.lock.acquire(blocking=False):
                        if holder.fingerprint != fingerprint or not holder.session.connected:
                            pool.remove(holder)  # edited channel or a lost link: replace it
                            stale.append(holder)
                        elif chosen is None:
                            chosen = holder
                            continue
                        holder.lock.release()
                if chosen is None and len(pool) < max(channel.bind_count, 1) and time.monotonic() >= next_lease:
                    chosen, new = ChannelSession(channel_id=channel.pk, fingerprint=fingerprint), True
                    chosen.lock.acquire()
                    pool.append(chosen)
            for holder in stale:
                cls._close(holder)
            if new:
                # Issue 20: the account's budget first; without a lease no bind is asked for.
                chosen.lease = binds.acquire(channel=channel, role="tx")
                if chosen.lease is None:
                    with cls._pools_lock:
                        cls._pools[channel.pk].remove(chosen)
                    chosen.lock.release()
                    chosen, new, next_lease = None, False, time.monotonic() + 0.2
            if chosen is not None:
                break
            if time.monotonic() >= deadline:
                raise BindsBusy(
                    f"all binds of channel {channel.pk} stayed busy ({channel.bind_count} per process, "
                    f"{channel.max_binds or 'no'} account limit)"
                )
            time.sleep(0.01)
        if new:
            chosen.session = SmppSession(
                host=channel.host,
                port=channel.port,
                system_id=channel.system_id,
                password=crypto.decrypt_secret(channel.password),
                system_type=channel.system_type,
                source_addr=channel.source_addr,
                window=channel.window_size,
                limiter=cls.limiter_for(channel),
                on_result=chosen.results.append,
                on_inbound=chosen.on_inbound,
                on_inbound_batch=chosen.on_inbound_batch,
                bind="transmitter" if channel.bind_mode == "split" else "transceiver",
                on_window=lambda _window, channel_id=channel.pk: cls._publish_window(channel_id),
            )
            try:
                chosen.session.connect()
            except BaseException:
                with cls._pools_lock:
                    cls._pools[channel.pk].remove(chosen)
                binds.release(chosen.lease)
                chosen.lock.release()
                raise
            metrics.bind_opened(channel.pk)
            cls._publish_window(channel.pk)
        return chosen

    @classmethod
    def _publish_window(cls, channel_id: int) -> None:
        """The channel's effective window in this process: the smallest of its binds' (issue 20:
        operators see the window the carrier left us, not the configured ceiling)."""
        with cls._pools_lock:
            windows = [
                h.session.effective_window
                for h in cls._pools.get(channel_id, [])
                if h.session is not None and h.session.connected
            ]
        if windows:
            metrics.set_channel_window(channel_id, min(windows))

    @staticmethod
    def release(holder: ChannelSession) -> None:
        holder.lock.release()

    @classmethod
    def discard(cls, holder: ChannelSession) -> None:
        """Remove a session the caller holds (its link broke) and close it."""
        with cls._pools_lock:
            pool = cls._pools.get(holder.channel_id, [])
            if holder in pool:
                pool.remove(holder)
        cls._close(holder)

    @staticmethod
    def _close(holder: ChannelSession) -> None:
        from .. import binds

        metrics.bind_closed(holder.channel_id)
        try:
            holder.session.close()
        except Exception:  # a broken socket cannot unbind; it is gone either way
            log.debug("closing session of channel %s failed", holder.channel_id, exc_info=True)
        finally:
            binds.release(holder.lease)  # after the unbind: the SMSC counts the bind until then
            holder.lease = None
            holder.lock.release()

    @classmethod
    def holders(cls) -> list[ChannelSession]:
        with cls._pools_lock:
            return [h for pool in cls._pools.values() for h in pool]

    @classmethod
    def close_all(cls, *, wait: float = 0.0) -> None:
        """Unbind every session that is free (within `wait` seconds)."""
        for holder in cls.holders():
            if holder.lock.acquire(timeout=wait) if wait else holder.lock.acquire(blocking=False):
                with cls._pools_lock:
                    pool = cls._pools.get(holder.channel_id, [])
                    if holder in pool:
                        pool.remove(holder)
                cls._close(holder)

    @classmethod
    def poll_idle(cls, *, apply_results: Callable[..., object]) -> int:
        """Read every idle bind of this process once (called by the worker's idle poller).
        Late submit responses go to `apply_results` (sender.apply_submit_results: the pool does
        not import the send job that uses it)."""
        from .results import SmppError

        polled = 0
        for holder in cls.holders():
            if not holder.lock.acquire(blocking=False):
                continue  # its owner is submitting: it reads the bind itself
            try:
                if holder.session.connected:
                    holder.session.poll(0)
                    polled += 1
                results = holder.take_results()
            except (SmppError, OSError):
                log.info("idle bind of channel %s lost; the next job replaces it", holder.channel_id)
                results = holder.take_results()
            except BaseException:
                holder.lock.release()
                raise
            if holder.session.connected:
                holder.lock.release()
            else:
                cls.discard(holder)  # its lease goes back to the account's budget now (releases the lock)
            if results:  # late submit responses of an earlier job
                apply_results(channel_id=holder.channel_id, results=results)
            holder.apply_inbound()
        return polled
