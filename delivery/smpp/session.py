"""SMPP 3.4 client session over smpplib (R-DLV-3, R-DLV-4).

One `SmppSession` is one bind (bind_transceiver unless `bind=` says otherwise). It is NOT
thread-safe: one thread calls submit(), poll(), drain() and close(); the callbacks run in that
thread. See docs/smpp.md for the design.

- connect(): smpplib ``Client.connect()`` + TCP_NODELAY on the socket right away (without it a
  windowed sender stalls on Nagle/delayed-ACK) + ``bind_transceiver``.
- submit(): splits the text (codec.split_text: GSM-7 or UCS-2, UDH concatenation), then sends
  each part as soon as (a) fewer than `window` submits are outstanding, (b) the TPS token bucket
  has a token and (c) no throttling back-off is running. While it waits it reads PDUs, so
  responses and deliver_sm keep flowing. Sending never waits for the response.
- Responses are matched by sequence number to (ref, part) and reported through `on_result`.
- Every part handed to submit() gets exactly one SubmitResult: OK, permanent error, or transient
  (throttled, queue full, system error, response timeout, disconnect). submit() raises before it
  has sent anything only when the session is not connected.
- On a disconnect every outstanding part (and the parts of the current message not yet sent) is
  reported transient with command_status STATUS_DISCONNECTED, then SmppDisconnected is raised;
  the caller reconnects (connect_with_backoff) and retries the transient parts.
- deliver_sm: smpplib's own ``read_once()`` calls the handler first and sends deliver_sm_resp
  after it returns (status = the handler's return value, ESME_ROK for None); if the handler raises,
  the exception escapes and no response is sent at all. We do our own reading: on_inbound is
  called BEFORE the deliver_sm_resp; when it raises we answer ESME_RX_T_APPN (temporary
  application error) so the SMSC redelivers, instead of leaving the PDU unanswered.
"""

from __future__ import annotations

import logging
import random
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from smpplib import client as smpp_client
from smpplib import consts, exceptions

from smsplatform import metrics

from .bind import close_client, open_bind
from .codec import address_fields, make_pdu, parse_pdu, pdu_text, read_deliver, read_query_resp, submit_pdus
from .pacing import TokenBucket, backoff_delays
from .receipts import normalise_message_id
from .results import (
    STATUS_DISCONNECTED,
    STATUS_NOT_SENT,
    STATUS_TIMEOUT,
    THROTTLE_STATUSES,
    TRANSIENT_STATUSES,
    InboundPdu,
    QueryResult,
    SmppBindError,
    SmppConnectError,
    SmppDisconnected,
    SmppError,
    SubmitResult,
)
from .window import SendWindow

logger = logging.getLogger("delivery.smpp")

#: the counters in SmppSession.stats
STAT_NAMES = (
    *("parts_sent", "ok", "transient", "permanent", "throttled", "timeouts", "disconnects"),
    *("enquire_links_sent", "inbound", "receipts", "inbound_errors", "unmatched_responses"),
    *("throttle_waits", "tps_waits", "window_waits", "window_cuts", "throttle_resends", "order_waits"),
    "writes",  # TCP writes (sendall calls): submits go several to a write
)


@dataclass
class _Pending:
    ref: str
    part: int
    parts: int
    sent_at: float
    fields: dict | None = None  # the submit_sm as sent: a throttled part is sent again as it was
    throttled: int = 0  # times the SMSC answered it 0x14/0x58 on this bind


class SmppSession:
    """One transceiver bind. NOT thread-safe: one thread calls submit()/poll()."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        system_id: str,
        password: str,
        system_type: str = "",
        source_addr: str = "",
        window: int = 10,
        tps: float | None = None,
        enquire_link_interval: float = 30.0,
        on_result: Callable[[SubmitResult], None],
        on_inbound: Callable[[InboundPdu], None],
        on_inbound_batch: Callable[[list[InboundPdu]], list[int | None] | None] | None = None,
        inbound_batch_size: int = 200,
        inbound_batch_wait: float = 0.05,
        response_timeout: float = 30.0,
        enquire_link_timeout: float | None = None,
        tps_burst: float | None = None,
        limiter: TokenBucket | None = None,
        throttle_backoff: float = 0.05,
        throttle_backoff_max: float = 2.0,
        socket_timeout: float = 10.0,
        dest_addr_ton: int = consts.SMPP_TON_INTL,
        inbound_default_alphabet: str = "gsm7",
        bind: str = "transceiver",
        on_window: Callable[[int], None] | None = None,
        window_hold: float = 5.0,
        window_recover_every: float = 1.0,
        throttle_resends: int = 5,
    ) -> None:
        if bind not in ("transceiver", "transmitter", "receiver"):
            raise ValueError("bind is 'transceiver', 'transmitter' or 'receiver'")
        #: bind type: "transceiver" (default); "transmitter" for senders that are not read while
        #: idle (the SMSC then sends deliver_sm only to receiving binds, e.g. a listener);
        #: "receiver" for a listener that never submits.
        self.bind = bind
        self.host, self.port = host, int(port)
        self.system_id, self.password, self.system_type = system_id, password, system_type
        self.source_addr = source_addr
        #: the configured window is a ceiling; the carrier's 0x14 / 0x58 halve the effective one,
        #: which grows back by one every `window_recover_every` s once `window_hold` s passed
        #: without another cut (issue 20); `on_window(n)` hears every change (the metrics gauge).
        #: It also holds the throttling back-off and the part order of refused parts (window.py).
        self.window = window
        self._window = SendWindow(
            window=window,
            hold=window_hold,
            recover_every=window_recover_every,
            backoff=throttle_backoff,
            backoff_max=throttle_backoff_max,
            on_change=on_window,
            label=system_id,
        )
        #: a part refused 0x14/0x58 is sent again by the session itself (not taken, so no
        #: duplicate) up to this many times before it is reported: none of it uses a message attempt
        self.throttle_resends = throttle_resends
        self._resend: deque[_Pending] = deque()
        self.tps = tps
        self.enquire_link_interval = enquire_link_interval
        self.enquire_link_timeout = enquire_link_timeout or min(enquire_link_interval, 10.0)
        self.response_timeout = response_timeout
        self.socket_timeout = socket_timeout
        self.dest_addr_ton = dest_addr_ton
        if inbound_default_alphabet not in ("gsm7", "latin1"):
            raise ValueError("inbound_default_alphabet is 'gsm7' or 'latin1'")
        #: how MO short_message with data_coding 0 is read: GSM 03.38 unpacked septets (default) or
        #: ASCII/Latin-1 (some SMSCs). Receipts with data_coding 0 are always read as ASCII.
        self.inbound_default_alphabet = inbound_default_alphabet
        self.on_result = on_result
        self.on_inbound = on_inbound
        #: optional: every deliver_sm of one read batch at once (one INSERT for all receipts),
        #: called before any of them is answered; returns None (all ESME_ROK) or one status per
        #: PDU (None = ESME_ROK); raising answers them all ESME_RX_T_APPN
        self.on_inbound_batch = on_inbound_batch
        #: deliver_sm are collected across reads while submits are outstanding, up to this many or
        #: this many seconds for the oldest (one INSERT per batch instead of one per read)
        self.inbound_batch_size = inbound_batch_size
        self.inbound_batch_wait = inbound_batch_wait
        self._inbound: list[InboundPdu] = []
        self._inbound_since = 0.0
        #: `limiter` (a bucket shared with other binds of the channel) wins over `tps`
        self.limiter = limiter or (TokenBucket(tps, tps_burst, history=100_000) if tps else None)

        self._client: smpp_client.Client | None = None
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._pending: dict[int, _Pending] = {}
        #: query_sm in flight (sequence → message id); answers land in _query_answers (issue 21)
        self._queries: dict[int, str] = {}
        self._query_answers: dict[int, QueryResult] = {}
        self._concat_ref = random.randrange(256)
        self._last_rx = 0.0
        self._enquire_sent_at: float | None = None
        self._unbind_seq: int | None = None
        #: the SMSC's own unbind (its sequence) while we wait for outstanding submit responses
        self._unbinding: int | None = None
        self._unbinding_deadline = 0.0
        #: how long an SMSC-initiated unbind waits for the responses of submits in flight
        self.unbind_grace = min(response_timeout, 5.0)
        self._out = bytearray()  # answers (deliver_sm_resp…) batched until the read batch ends
        self._sends_since_read = 0
        self.stats = dict.fromkeys(STAT_NAMES, 0)

    # -- properties ---------------------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """Parts sent and unanswered, plus throttled parts waiting to be sent again."""
        return len(self._pending) + len(self._resend)

    @property
    def effective_window(self) -> int:
        """The window the carrier lets us use now (<= the configured `window`)."""
        return self._window.effective

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def is_alive(self) -> bool:
        """Read whatever is pending without waiting and tell whether the bind is still up. Use it
        before reusing a session that sat idle (an SMSC that closed the socket meanwhile is only
        noticed on the next read); a dead link is torn down (outstanding parts reported)."""
        if self._sock is None:
            return False
        try:
            self._read(0.0)
        except SmppDisconnected:
            return False
        return self._sock is not None

    # -- connection ---------------------------------------------------------------------------------
    def connect(self) -> None:
        """Connect (TCP_NODELAY) + bind_transceiver (or the `bind` type chosen).
        Raises SmppConnectError / SmppBindError."""
        if self._sock is not None:
            return
        client, sock = open_bind(
            host=self.host,
            port=self.port,
            system_id=self.system_id,
            password=self.password,
            system_type=self.system_type,
            bind=self.bind,
            socket_timeout=self.socket_timeout,
        )
        self._client, self._sock = client, sock
        self._buf.clear()
        self._last_rx = time.monotonic()
        self._enquire_sent_at = None
        logger.info("SMPP bound %s %s@%s:%s", self.bind, self.system_id, self.host, self.port)

    def connect_with_backoff(
        self,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        *,
        max_delay: float = 30.0,
        jitter: float = 0.1,
        retry_bind_errors: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """connect(), retrying connection failures with exponential back-off (base_delay, 2×, 4×…,
        capped at max_delay, +jitter). Bind refusals are not retried unless retry_bind_errors.
        Returns the number of attempts used; raises the last error when all attempts failed."""
        delays = backoff_delays(max_attempts, base_delay, max_delay, jitter)
        for attempt in range(1, max_attempts + 1):
            try:
                self.connect()
                return attempt
            except SmppBindError:
                if not retry_bind_errors or attempt == max_attempts:
                    raise
            except SmppConnectError:
                if attempt == max_attempts:
                    raise
            logger.warning(
                "SMPP connect attempt %s/%s failed; retrying in %.2fs", attempt, max_attempts, delays[attempt - 1]
            )
            sleep(delays[attempt - 1])
        raise SmppConnectError("no connection attempt made")  # max_attempts < 1

    def close(self) -> None:
        """unbind (waiting briefly for unbind_resp) and close. Parts still outstanding are
        reported transient (STATUS_DISCONNECTED): drain() first to avoid that."""
        if self._sock is None:
            return
        try:
            self.answer_inbound()  # stored and answered before we go (else they come again)
            seq = self._send("unbind")
            deadline = time.monotonic() + 2.0
            self._unbind_seq = seq
            while self._sock is not None and getattr(self, "_unbind_seq", None) is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._read(remaining)
        except SmppDisconnected:
            return
        if self._sock is not None:
            self._lost("closed", raise_=False)

    def abandon(self, reason: str) -> None:
        """Give up on a bind that stopped answering (TCP may still be open): answers already
        received are processed, parts still outstanding are reported STATUS_DISCONNECTED
        (outcome unknown), and the socket is closed without an unbind. Never reused (issue 20)."""
        if self._sock is None:
            return
        self._salvage()
        self.stats["disconnects"] += 1
        logger.warning("SMPP %s@%s:%s abandoned: %s", self.system_id, self.host, self.port, reason)
        self._lost(reason, raise_=False)

    # -- submitting -------------------------------------------------------------------------------
    def _next_concat_ref(self) -> int:
        self._concat_ref = (self._concat_ref + 1) % 256
        return self._concat_ref

    def submit(
        self,
        *,
        ref: str,
        source: str,
        destination: str,
        text: str,
        registered_delivery: bool = True,
        reference: int | None = None,
        only_parts: frozenset[int] | set[int] | None = None,
    ) -> int:
        """Send a message (all its parts, or `only_parts` of them); returns the number of parts.

        `reference` is the concatenation reference (UDH) of a long message: a resent part must
        carry the one its accepted siblings carried, so the caller keeps it (Message.concat_ref);
        without it the session picks one. Blocks only while the window is full, the TPS limit
        says wait, or a throttling back-off runs. The submit_sm are written with the session's
        next read or wait (several to a TCP write): call drain() or poll() after submitting.
        Raises SmppDisconnected (nothing sent, nothing reported) when not connected; on a
        disconnect in the middle, parts handed to the link without an answer (written, or
        buffered for the next write) are reported STATUS_DISCONNECTED (outcome unknown) and
        parts not handed over STATUS_NOT_SENT, then it raises."""
        if self._sock is None:
            raise SmppDisconnected("not connected")
        if self.bind == "receiver":
            raise SmppError("a receiver bind cannot submit")
        if reference is None:
            reference = self._next_concat_ref()
        pdus = submit_pdus(
            source=source or self.source_addr,
            destination=destination,
            text=text,
            reference=reference,
            registered_delivery=registered_delivery,
            dest_addr_ton=self.dest_addr_ton,
        )
        parts = len(pdus)
        todo = [i for i in range(1, parts + 1) if only_parts is None or i in only_parts]
        for position, index in enumerate(todo):
            fields = pdus[index - 1]
            try:
                self._wait_to_send(ref, index)
                # Written with the next read or wait (_read flushes first; _wait_for_slot reads
                # every 8 sends): a few submits per TCP write instead of one each (issue 16).
                seq = self._send("submit_sm", flush=False, **fields)
            except SmppDisconnected:
                for part in todo[position:]:
                    self._report(_Pending(ref, part, parts, 0.0), None, STATUS_NOT_SENT)
                raise
            self._pending[seq] = _Pending(ref, index, parts, time.monotonic(), fields)
            self.stats["parts_sent"] += 1
        return parts

    def _send_resends(self) -> bool:
        """Send again the parts the SMSC refused with 0x14 / 0x58 (it did not take them), each as
        soon as part order (SendWindow.next_resend), the (halved) window, the back-off and the TPS limit
        allow. Returns whether any was sent."""
        sent = False
        while self._resend and self._unbinding is None and self._next_resend() is not None:
            self._wait_for_slot()
            item = self._next_resend()  # the read while waiting may have refused an earlier part
            if item is None or self._unbinding is not None:
                break
            self._resend.remove(item)
            seq = self._send("submit_sm", **item.fields)
            item.sent_at = time.monotonic()
            self._pending[seq] = item
            self.stats["parts_sent"] += 1
            self.stats["throttle_resends"] += 1
            sent = True
        return sent

    def _next_resend(self) -> _Pending | None:
        return self._window.next_resend(self._resend, self._pending.values())

    def _wait_to_send(self, ref: str, part: int) -> None:
        """Wait until `part` of message `ref` may be submitted: refused parts go first, a refused
        earlier part of the same message must be accepted first, then window/back-off/TPS."""
        while True:
            self._send_resends()
            if self._unbinding is not None:
                raise SmppDisconnected("the SMSC asked to unbind")
            if self._window.held(ref, part):
                self.stats["order_waits"] += 1
                now = time.monotonic()
                self._read(self._next_deadline(now) - now)
                continue
            self._wait_for_slot()
            if not self._window.held(ref, part):
                return

    def _wait_for_slot(self) -> None:
        while True:
            now = time.monotonic()
            self._window.grow(now)
            if len(self._pending) >= self._window.effective:
                self.stats["window_waits"] += 1
                self._read(self._next_deadline(now) - now)
                continue
            if now < self._window.backoff_until():
                self.stats["throttle_waits"] += 1
                self._read(self._window.backoff_until() - now)
                continue
            if self.limiter is not None:
                wait = self.limiter.try_take(now)
                if wait > 0:
                    self.stats["tps_waits"] += 1
                    self._read(wait)
                    continue
            # now and then read what is already there (keeps receipts flowing with a large window)
            self._sends_since_read += 1
            if self._sends_since_read >= 8:
                self._read(0.0)
            return

    def _next_deadline(self, now: float) -> float:
        """When housekeeping must run next at the latest (response timeout / keep-alive)."""
        deadline = now + 1.0
        if self._pending:
            oldest = next(iter(self._pending.values()))
            deadline = min(deadline, oldest.sent_at + self.response_timeout)
        return max(deadline, now + 0.001)

    # -- querying (issue 21, item 3) ---------------------------------------------------------------
    def query(self, items: list[tuple[str, str]], *, timeout: float = 10.0) -> list[QueryResult]:
        """query_sm for each (message_id, source address as submitted); one QueryResult each, in
        order. Synchronous on this session's own read loop (the session is single-threaded): at
        most `window` queries in flight, the TPS limiter applies as to submits, and submit
        responses and deliver_sm read meanwhile go to their callbacks as usual. Unanswered within
        `timeout`: STATUS_TIMEOUT; link lost: STATUS_DISCONNECTED for the rest (then
        `connected` is False and the caller replaces the bind). Raises SmppDisconnected only when
        not connected at the start."""
        if self._sock is None:
            raise SmppDisconnected("not connected")
        deadline = time.monotonic() + timeout
        sequences: list[int | None] = []
        try:
            for message_id, source in items:
                while len(self._queries) >= self.window and time.monotonic() < deadline:
                    self._read(min(deadline, self._next_deadline(time.monotonic())) - time.monotonic())
                if time.monotonic() >= deadline:
                    sequences.append(None)
                    continue
                if self.limiter is not None:
                    wait = self.limiter.try_take(time.monotonic())
                    while wait > 0 and time.monotonic() + wait < deadline:
                        self._read(wait)
                        wait = self.limiter.try_take(time.monotonic())
                    if wait > 0:
                        sequences.append(None)
                        continue
                src, ton, npi = address_fields(source or self.source_addr, default_ton=consts.SMPP_TON_UNK)
                seq = self._send(
                    "query_sm", message_id=message_id, source_addr_ton=ton, source_addr_npi=npi, source_addr=src
                )
                self._queries[seq] = message_id
                sequences.append(seq)
            while self._queries and time.monotonic() < deadline:
                self._read(min(deadline, self._next_deadline(time.monotonic())) - time.monotonic())
        except SmppDisconnected:
            pass  # answers already read are kept; the rest is reported below
        lost = STATUS_DISCONNECTED if self._sock is None else STATUS_TIMEOUT
        out = []
        for (message_id, _source), seq in zip(items, sequences, strict=True):
            self._queries.pop(seq, None)
            answer = self._query_answers.pop(seq, None) if seq is not None else None
            out.append(answer or QueryResult(message_id=message_id, command_status=lost))
        return out

    def _on_query_resp(self, pdu) -> None:
        self._query_answers[pdu.sequence] = read_query_resp(pdu, self._queries.pop(pdu.sequence))

    # -- reading ----------------------------------------------------------------------------------
    def poll(self, timeout: float = 0.0) -> int:
        """Read pending PDUs (responses, deliver_sm), waiting up to `timeout` for the first one;
        answers enquire_link, sends our own when idle, expires response timeouts.
        Returns the number of PDUs handled. Raises SmppDisconnected when the link is gone."""
        if self._sock is None:
            raise SmppDisconnected("not connected")
        return self._read(timeout)

    def drain(self, timeout: float) -> None:
        """Read until no submit is outstanding or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        while self._pending or self._resend:
            now = time.monotonic()
            if now >= deadline:
                return
            if self._resend and self._unbinding is None and self._send_resends():
                continue
            if not self._pending:
                return  # resends held back by an unbind: reported when the link closes
            self._read(min(deadline, self._next_deadline(now)) - now)

    def _read(self, timeout: float) -> int:
        sock = self._sock
        if sock is None:
            raise SmppDisconnected("not connected")
        handled = 0
        self._sends_since_read = 0
        waiting = len(self._inbound)
        self._flush()  # what submit() buffered goes out before we wait for its answers
        try:
            readable, _, _ = select.select([sock], [], [], max(0.0, timeout))
            while readable:
                data = sock.recv(262144)
                if not data:
                    self._lost("connection closed by the SMSC")
                self._buf += data
                handled += self._handle_buffer()
                if self._sock is None:
                    break
                self._flush()
                readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, exceptions.ConnectionError) as exc:
            self._lost(f"socket error: {exc}")
        # Answer collected deliver_sm when nothing is outstanding, the batch is full or old, or
        # this read brought no new one (an SMSC with a small deliver_sm window waits for our
        # answers before it sends more: never hold those up).
        if self._inbound and (
            not self._pending
            or len(self._inbound) == waiting
            or len(self._inbound) >= self.inbound_batch_size
            or time.monotonic() - self._inbound_since >= self.inbound_batch_wait
        ):
            self.answer_inbound()
        self._housekeeping()
        return handled

    def _handle_buffer(self) -> int:
        buf = self._buf
        handled = 0
        while len(buf) >= 16:
            length = int.from_bytes(buf[:4], "big")
            if length < 16 or length > 1 << 20:
                self._lost(f"broken PDU length {length}")
            if len(buf) < length:
                break
            raw = bytes(buf[:length])
            del buf[:length]
            self._last_rx = time.monotonic()
            try:
                pdu = parse_pdu(raw, self._client)
            except Exception as exc:  # noqa: BLE001 - malformed PDU from the SMSC
                logger.warning("SMPP: cannot parse PDU %r: %s", raw[:32], exc)
                seq = int.from_bytes(raw[12:16], "big")
                self._send("generic_nack", sequence=seq, status=consts.SMPP_ESME_RINVCMDLEN)
                continue
            handled += 1
            self._dispatch(pdu, raw)
            if self._sock is None:
                break
        return handled

    def _dispatch(self, pdu, raw: bytes) -> None:
        command = pdu.command
        if command in ("query_sm_resp", "generic_nack") and pdu.sequence in self._queries:
            self._on_query_resp(pdu)  # issue 21: a generic_nack here = query_sm not supported
        elif command in ("submit_sm_resp", "generic_nack"):
            pending = self._pending.pop(pdu.sequence, None)
            if pending is None:
                self.stats["unmatched_responses"] += 1
                logger.warning("SMPP: %s for unknown sequence %s (status %s)", command, pdu.sequence, pdu.status)
                return
            message_id = pdu_text(getattr(pdu, "message_id", None)) if pdu.status == consts.SMPP_ESME_ROK else None
            self._report(pending, message_id, pdu.status)
        elif command in ("deliver_sm", "data_sm"):
            self._on_deliver(pdu)
        elif command == "enquire_link":
            self._send("enquire_link_resp", sequence=pdu.sequence, flush=False)
        elif command == "enquire_link_resp":
            self._enquire_sent_at = None
        elif command == "unbind":
            # Issue 20: stop submitting, let the answers of submits in flight arrive (bounded),
            # then answer and close; answering at once lost them and made us resend accepted parts.
            self._unbinding = pdu.sequence
            self._unbinding_deadline = time.monotonic() + self.unbind_grace
            logger.info("SMPP %s: the SMSC asks to unbind (%s outstanding)", self.system_id, len(self._pending))
        elif command == "unbind_resp":
            self._unbind_seq = None
            self._lost("unbound", raise_=False)
        elif command in ("alert_notification", "query_sm_resp") or pdu.is_response():  # a late query answer too
            logger.info("SMPP: ignoring %s", command)
        else:
            self._send("generic_nack", sequence=pdu.sequence, status=consts.SMPP_ESME_RINVCMDID)

    def _report(self, pending: _Pending, message_id: str | None, status: int) -> None:
        now = time.monotonic()
        metrics.observe_submit_rtt(self.system_id, now - pending.sent_at, status)
        transient = status in TRANSIENT_STATUSES
        if status == consts.SMPP_ESME_ROK:
            self.stats["ok"] += 1
            self._window.accepted(sent_at=pending.sent_at)
        elif transient:
            self.stats["transient"] += 1
            if status in THROTTLE_STATUSES:
                self.stats["throttled"] += 1
                if self._window.cut(sent_at=pending.sent_at, now=now):
                    self.stats["window_cuts"] += 1
                self._window.throttled(now)
                if (
                    pending.fields is not None
                    and pending.throttled < self.throttle_resends
                    and self._unbinding is None
                    and self._sock is not None
                ):
                    pending.throttled += 1
                    self._resend.append(pending)  # not taken by the SMSC: ours to send again
                    self._window.refused(pending.ref, pending.part)
                    return
            elif status == STATUS_TIMEOUT:
                self.stats["timeouts"] += 1
        else:
            self.stats["permanent"] += 1
        self._window.settled(pending.ref, pending.part)  # later parts of the message may go
        self.on_result(
            SubmitResult(
                ref=pending.ref,
                part=pending.part,
                parts=pending.parts,
                message_id=normalise_message_id(message_id) if message_id else None,
                command_status=status,
                transient=transient,
                raw_message_id=message_id,
            )
        )

    def _on_deliver(self, pdu) -> None:
        inbound = read_deliver(pdu, inbound_default_alphabet=self.inbound_default_alphabet)
        self.stats["receipts" if inbound.is_receipt else "inbound"] += 1
        if self.on_inbound_batch is not None:
            if not self._inbound:
                self._inbound_since = time.monotonic()
            self._inbound.append(inbound)  # handled and answered in a batch (answer_inbound)
            return
        try:
            status = self.on_inbound(inbound)
            status = consts.SMPP_ESME_ROK if status is None else int(status)
        except Exception:
            # Not acknowledged positively: the SMSC keeps the PDU and redelivers it later.
            logger.exception("SMPP: on_inbound failed; answering ESME_RX_T_APPN for redelivery")
            self.stats["inbound_errors"] += 1
            status = consts.SMPP_ESME_RX_T_APPN
        self._send(f"{pdu.command}_resp", sequence=pdu.sequence, status=status, flush=False)

    def answer_inbound(self) -> None:
        """Hand the deliver_sm collected so far to on_inbound_batch (e.g. one INSERT for all the
        receipts), then answer each with the status it returned; ESME_RX_T_APPN for all when it
        raised (the SMSC redelivers; storing a receipt twice is harmless). _read calls it when
        nothing is outstanding, the batch is full or its oldest PDU waited inbound_batch_wait."""
        if not self._inbound or self._sock is None:
            return
        batch = list(self._inbound)
        self._inbound.clear()
        try:
            statuses = self.on_inbound_batch(batch) or [None] * len(batch)
        except Exception:
            logger.exception("SMPP: on_inbound_batch failed; answering ESME_RX_T_APPN for redelivery")
            self.stats["inbound_errors"] += len(batch)
            statuses = [consts.SMPP_ESME_RX_T_APPN] * len(batch)
        for inbound, status in zip(batch, statuses, strict=True):
            status = consts.SMPP_ESME_ROK if status is None else int(status)
            self._send(f"{inbound.command}_resp", sequence=inbound.sequence, status=status, flush=False)
        self._flush()

    def _housekeeping(self) -> None:
        if self._sock is None:
            return
        now = time.monotonic()
        self._window.grow(now)
        if self._unbinding is not None and (not self._pending or now >= self._unbinding_deadline):
            self.answer_inbound()
            self._send("unbind_resp", sequence=self._unbinding)
            self._lost("unbind requested by the SMSC")
        # response timeouts: the oldest pending first (dict keeps send order)
        timed_out = 0
        while self._pending:
            seq, oldest = next(iter(self._pending.items()))
            if now - oldest.sent_at < self.response_timeout:
                break
            del self._pending[seq]
            logger.warning("SMPP: no submit_sm_resp for seq %s within %ss", seq, self.response_timeout)
            self._report(oldest, None, STATUS_TIMEOUT)
            timed_out += 1
        if timed_out:
            # A link that stops answering (TCP still open) is not trusted again (issue 20): the
            # other outstanding parts are unknown too, and the bind is replaced.
            self._lost(f"{timed_out} submit(s) unanswered for {self.response_timeout}s")
        # keep-alive
        if self._enquire_sent_at is not None:
            if now - self._enquire_sent_at > self.enquire_link_timeout:
                self._lost("no enquire_link_resp")
        elif now - self._last_rx >= self.enquire_link_interval:
            self._send("enquire_link")
            self._enquire_sent_at = now
            self.stats["enquire_links_sent"] += 1

    # -- low level --------------------------------------------------------------------------------
    def _send(self, command: str, *, flush: bool = True, **fields) -> int:
        """Encode with smpplib's PDU classes and write (flush=False: batch until _flush())."""
        if self._sock is None:
            raise SmppDisconnected("not connected")
        sequence = fields.pop("sequence", None)
        pdu = make_pdu(command, self._client, fields)
        if sequence is not None:
            pdu.sequence = sequence  # smpplib ignores a sequence kwarg (its property shadows it)
        self._out += pdu.generate()
        if flush:
            self._flush()
        return pdu.sequence

    def _flush(self) -> None:
        if not self._out or self._sock is None:
            return
        data = bytes(self._out)
        self._out.clear()
        self.stats["writes"] += 1
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self._lost(f"send failed: {exc}")

    def _salvage(self) -> None:
        """Before giving up on a socket, process submit responses already received (the SMSC may
        have answered, then closed): reporting those as lost would make the caller resend messages
        the SMSC accepted. Other PDUs are left unanswered (the SMSC redelivers deliver_sm)."""
        sock = self._sock
        if sock is None:
            return
        try:
            sock.setblocking(False)
            while True:
                data = sock.recv(262144)
                if not data:
                    break
                self._buf += data
        except OSError:
            pass
        buf = self._buf
        while len(buf) >= 16:
            length = int.from_bytes(buf[:4], "big")
            if length < 16 or len(buf) < length:
                break
            raw = bytes(buf[:length])
            del buf[:length]
            try:
                pdu = parse_pdu(raw, self._client)
            except Exception:  # noqa: BLE001, S112 - broken leftovers of a dead link
                continue
            if pdu is not None and pdu.command in ("submit_sm_resp", "generic_nack"):
                pending = self._pending.pop(pdu.sequence, None)
                if pending is not None:
                    message_id = pdu_text(getattr(pdu, "message_id", None)) if pdu.status == 0 else None
                    self._report(pending, message_id, pdu.status)

    def _lost(self, reason: str, *, raise_: bool = True) -> None:
        """Tear down; report all outstanding parts transient (STATUS_DISCONNECTED)."""
        if raise_:
            self._salvage()
        if self._client is not None:
            close_client(self._client)
        self._client, self._sock = None, None
        self._buf.clear()
        self._out.clear()
        self._inbound.clear()  # unanswered: the SMSC delivers them again
        self._unbind_seq = None
        self._unbinding = None
        self._enquire_sent_at = None
        self._queries.clear()  # query() reports them STATUS_DISCONNECTED
        pending = list(self._pending.values())
        self._pending.clear()
        refused = list(self._resend)  # refused by the SMSC and not sent again: safe to send again
        self._resend.clear()
        if raise_:
            self.stats["disconnects"] += 1
            logger.warning(
                "SMPP %s@%s:%s disconnected: %s (%s outstanding)",
                self.system_id,
                self.host,
                self.port,
                reason,
                len(pending),
            )
        for item in refused:
            self._report(item, None, STATUS_NOT_SENT)
        for item in pending:
            self._report(item, None, STATUS_DISCONNECTED)
        if raise_:
            raise SmppDisconnected(reason)
