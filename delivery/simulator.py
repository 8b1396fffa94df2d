"""A small SMPP 3.4 SMSC simulator for tests, benches and local development (R-DLV-3, R-DLV-4).

asyncio server in a background thread; PDUs are encoded/decoded with smpplib's own PDU classes
(no usable SMPP server package exists, see shared/docs/stack.md). Fault switches: throttling,
disconnects, TPS cap, slow responses, receipt ordering/duplication/other-bind, deliver_sm
redelivery when the ESME answers with an error status or drops the bind.

    sim = SmscSimulator("127.0.0.1", 0, credentials={"demo": "demo"}, receipt_delay=0.1)
    sim.start(); ...; sim.stop()

Or ``manage.py smsc_simulator --port 2775 --system-id demo --password demo``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from smpplib import consts, smpp

from delivery import receipts

logger = logging.getLogger("delivery.simulator")

BIND_COMMANDS = {
    "bind_transmitter": ("bind_transmitter_resp", True, False),
    "bind_receiver": ("bind_receiver_resp", False, True),
    "bind_transceiver": ("bind_transceiver_resp", True, True),
}


class _Seq:
    """The minimal 'client' smpplib PDUs need for sequence numbers."""

    def __init__(self) -> None:
        self.sequence = 0

    def next_sequence(self) -> int:
        self.sequence = self.sequence + 1 if self.sequence < 0x7FFFFFFF else 1
        return self.sequence


@dataclass
class SubmitRecord:
    """One accepted submit_sm, as the SMSC saw it."""

    system_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    udh: tuple[int, int, int] | None  # (ref, total, seq) for concatenated parts
    text: str  # this part's decoded text
    message_id: str  # as returned in submit_sm_resp
    received_at: float  # time.monotonic()
    sequence: int


@dataclass
class DeliverRecord:
    """One deliver_sm the SMSC sent (receipt or MO) and what the ESME answered."""

    kind: str  # "receipt" | "mo"
    message_id: str | None
    text: str
    sequence: int
    status: int | None = None  # deliver_sm_resp command_status (None: not answered yet)
    attempt: int = 1


@dataclass
class _PendingDeliver:
    kind: str
    fields: dict
    message_id: str | None
    text: str
    attempt: int = 1


class _Connection(asyncio.Protocol):
    def __init__(self, sim: SmscSimulator) -> None:
        self.sim = sim
        self.seq = _Seq()
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.system_id: str | None = None
        self.can_transmit = False
        self.can_receive = False
        self.closed = False
        self.unacked: dict[int, tuple[_PendingDeliver, DeliverRecord]] = {}
        self.timers: list[asyncio.TimerHandle] = []
        self.pending_responses = 0  # delayed submit_sm_resp not written yet

    # -- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.sim._connections.add(self)
        self.sim.connections_made += 1
        if self.sim.disconnect_after:
            self.timers.append(self.sim._loop.call_later(self.sim.disconnect_after, self.drop))

    def _cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        self.sim._outstanding -= self.pending_responses  # those answers will never be written
        self.pending_responses = 0

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.sim._connections.discard(self)
        self._cancel_timers()
        # deliver_sm never acknowledged: the SMSC keeps them and redelivers them to another bound
        # receiver of the same account (or, with none bound, to the next bind). Waiting for a new
        # bind only stranded them whenever the account's other bind (a listener) stayed up.
        for pending, _record in self.unacked.values():
            self.sim._loop.call_later(self.sim.redeliver_delay, self.sim._deliver, self.system_id, pending, None)
        self.unacked.clear()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return  # dropped: ignore whatever still arrives
        self.buffer += data
        while len(self.buffer) >= 4:
            (length,) = struct.unpack(">L", self.buffer[:4])
            if length < 16 or length > 65536:
                self.drop()
                return
            if len(self.buffer) < length:
                return
            raw = bytes(self.buffer[:length])
            del self.buffer[:length]
            try:
                pdu = smpp.parse_pdu(raw, client=self.seq, sequence=0, allow_unknown_opt_params=True)
            except Exception:  # noqa: BLE001 - a broken PDU gets generic_nack
                logger.exception("simulator: cannot parse PDU")
                seq = struct.unpack(">L", raw[12:16])[0]
                self.send("generic_nack", sequence=seq, status=consts.SMPP_ESME_RINVCMDLEN)
                continue
            if pdu is None:
                seq = struct.unpack(">L", raw[12:16])[0]
                self.send("generic_nack", sequence=seq, status=consts.SMPP_ESME_RINVCMDID)
                continue
            self.handle(pdu)
            if self.closed:
                return

    # -- helpers
    @property
    def writable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def make(self, command: str, **fields):
        sequence = fields.pop("sequence", None)
        pdu = smpp.make_pdu(command, client=self.seq, **fields)
        if sequence is not None:
            pdu.sequence = sequence  # smpplib ignores a sequence kwarg (its property shadows it)
        return pdu

    def send(self, command: str, **fields) -> int:
        if not self.writable:
            return 0
        pdu = self.make(command, **fields)
        self.transport.write(pdu.generate())
        return pdu.sequence

    def drop(self, *, abort: bool = False) -> None:
        """Drop the connection. Default: like an SMSC that closes cleanly — answers already written
        are flushed, a FIN follows, later PDUs are read and ignored, the socket closes 0.5 s later
        (so the ESME sees every answer, then EOF, not a reset). abort=True: TCP RST at once."""
        if self.closed or self.transport is None:
            return
        self.sim.disconnects += 1
        self.closed = True
        self._cancel_timers()
        if abort:
            self.transport.abort()
        elif self.transport.can_write_eof():
            self.transport.write_eof()
            self.timers.append(self.sim._loop.call_later(0.5, self.transport.close))
        else:
            self.transport.close()

    # -- PDU handling
    def handle(self, pdu) -> None:
        sim = self.sim
        command = pdu.command
        if command in BIND_COMMANDS:
            self.on_bind(pdu)
        elif command == "submit_sm":
            self.on_submit(pdu)
        elif command == "deliver_sm_resp":
            self.on_deliver_resp(pdu)
        elif command == "enquire_link":
            sim.enquire_links += 1
            self.send("enquire_link_resp", sequence=pdu.sequence)
        elif command == "enquire_link_resp":
            pass
        elif command == "unbind":
            self.send("unbind_resp", sequence=pdu.sequence)
            self.closed = True
            self.transport.close()
        elif command == "generic_nack":
            pass
        else:
            self.send("generic_nack", sequence=pdu.sequence, status=consts.SMPP_ESME_RINVCMDID)

    def on_bind(self, pdu) -> None:
        resp = BIND_COMMANDS[pdu.command][0]
        if self.system_id is not None:
            self.send(resp, sequence=pdu.sequence, status=consts.SMPP_ESME_RALYBND)
            return
        system_id = _text(pdu.system_id)
        password = _text(pdu.password)
        expected = self.sim.credentials.get(system_id)
        if expected is None or expected != password:
            self.sim.bind_failures += 1
            self.send(resp, sequence=pdu.sequence, status=consts.SMPP_ESME_RBINDFAIL)
            return
        self.system_id = system_id
        _, self.can_transmit, self.can_receive = BIND_COMMANDS[pdu.command]
        self.sim.binds += 1
        self.send(resp, sequence=pdu.sequence, system_id=self.sim.smsc_system_id)
        if self.can_receive:
            for pending in self.sim._retry_queue.pop(system_id, []) + self.sim._retry_queue.pop(None, []):
                self.sim._loop.call_soon(self.sim._deliver, system_id, pending, None)

    def on_submit(self, pdu) -> None:
        sim = self.sim
        sim.submits_received += 1
        if not self.can_transmit:
            self.send("submit_sm_resp", sequence=pdu.sequence, status=consts.SMPP_ESME_RINVBNDSTS)
            return
        if sim.disconnect_every and sim.submits_received % sim.disconnect_every == 0:
            self.drop()  # this submit is lost (never answered); earlier answers are flushed
            return
        if sim.throttle_every and sim.submits_received % sim.throttle_every == 0:
            sim.throttled += 1
            self.send("submit_sm_resp", sequence=pdu.sequence, status=consts.SMPP_ESME_RTHROTTLED)
            return
        if sim.tps_cap and not sim._bucket_for(self.system_id).try_take(time.monotonic()):
            sim.throttled += 1
            self.send("submit_sm_resp", sequence=pdu.sequence, status=consts.SMPP_ESME_RTHROTTLED)
            return
        if sim.reject_destinations and _text(pdu.destination_addr) in sim.reject_destinations:
            self.send("submit_sm_resp", sequence=pdu.sequence, status=consts.SMPP_ESME_RINVDSTADR)
            return

        esm_class = pdu.esm_class or 0
        data_coding = pdu.data_coding or 0
        short_message = pdu.short_message or b""
        if not short_message and getattr(pdu, "message_payload", None):
            short_message = pdu.message_payload
        udh = None
        if esm_class & receipts.ESM_CLASS_UDHI:
            udh, short_message = receipts.parse_udh(short_message)
        number = next(sim._ids)
        message_id = sim._format_id(number, sim.submit_id_format)
        record = SubmitRecord(
            system_id=self.system_id,
            source=_text(pdu.source_addr),
            destination=_text(pdu.destination_addr),
            data_coding=data_coding,
            esm_class=esm_class,
            registered_delivery=pdu.registered_delivery or 0,
            udh=udh,
            text=receipts.decode_text(short_message, data_coding),
            message_id=message_id,
            received_at=time.monotonic(),
            sequence=pdu.sequence,
        )
        with sim._lock:
            sim.submitted.append(record)
        sim._outstanding += 1
        sim.max_outstanding = max(sim.max_outstanding, sim._outstanding)

        def respond(delayed: bool = False) -> None:
            sim._outstanding -= 1
            if delayed:
                self.pending_responses -= 1
            if record.registered_delivery & 0x03 and sim.receipt_before_response:
                sim._schedule_receipt(self, record, 0.0)
            self.send("submit_sm_resp", sequence=pdu.sequence, message_id=message_id)
            if record.registered_delivery & 0x03 and not sim.receipt_before_response:
                sim._schedule_receipt(self, record, sim.receipt_delay)

        if sim.response_delay:
            if len(self.timers) > 1000:
                now = sim._loop.time()
                self.timers = [t for t in self.timers if not t.cancelled() and t.when() > now]
            self.pending_responses += 1
            self.timers.append(sim._loop.call_later(sim.response_delay, respond, True))
        else:
            respond()

    def on_deliver_resp(self, pdu) -> None:
        entry = self.unacked.pop(pdu.sequence, None)
        sim = self.sim
        if entry is None:
            return
        pending, record = entry
        record.status = pdu.status
        if pdu.status == consts.SMPP_ESME_ROK:
            sim.deliver_acked += 1
            return
        sim.deliver_nacked += 1
        if pending.attempt <= sim.max_redeliveries:
            pending.attempt += 1
            sim._loop.call_later(sim.redeliver_delay, sim._deliver, self.system_id, pending, None)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


class _Bucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def try_take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SmscSimulator:
    """SMPP 3.4 SMSC for tests. All options are plain attributes and may be changed while running
    (the loop reads them on each PDU).

    credentials: {system_id: password}; a bind with anything else gets ESME_RBINDFAIL.
    receipt_delay: seconds between submit_sm_resp and the receipt (one receipt per part).
    outcomes: {stat: weight}, e.g. {"DELIVRD": 0.9, "UNDELIV": 0.05, "EXPIRED": 0.05}.
    throttle_every: every Nth submit_sm (global count) gets ESME_RTHROTTLED.
    disconnect_every: the Nth submit_sm (global count) is not answered and the connection drops.
    disconnect_after: drop every connection this many seconds after it was opened.
    tps_cap: submits above this rate per system get ESME_RTHROTTLED (burst = tps_cap / 10, >= 1).
    receipt_id_format: "hex" | "dec": how the receipt's ``id:`` field renders the message id.
    submit_id_format: "hex" | "dec": how submit_sm_resp renders it (hex is upper case, zero padded
        to 10 digits, decimal zero padded to 10 digits — exercising normalisation).
    receipt_tlvs: also send receipted_message_id / message_state TLVs in receipts (id as in
        submit_sm_resp).
    receipt_on_other_bind: send receipts on another receiving bind of the same system_id if any.
    duplicate_receipts: probability (0..1) that a receipt is sent twice.
    receipt_before_response: send the receipt before the submit_sm_resp.
    response_delay: delay every submit_sm_resp (lets tests see the ESME's window).
    reject_destinations: destinations answered with ESME_RINVDSTADR (a permanent error).
    redeliver_delay / max_redeliveries: deliver_sm answered with an error is sent again.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        credentials: dict[str, str] | None = None,
        receipt_delay: float = 0.0,
        outcomes: dict[str, float] | None = None,
        throttle_every: int = 0,
        disconnect_every: int = 0,
        disconnect_after: float = 0.0,
        tps_cap: float | None = None,
        receipt_id_format: str = "hex",
        submit_id_format: str = "hex",
        receipt_tlvs: bool = False,
        receipt_on_other_bind: bool = False,
        duplicate_receipts: float = 0.0,
        receipt_before_response: bool = False,
        response_delay: float = 0.0,
        reject_destinations: set[str] | None = None,
        redeliver_delay: float = 0.2,
        max_redeliveries: int = 3,
        seed: int | None = None,
        smsc_system_id: str = "SIMSC",
        first_message_id: int = 0x1000,
    ) -> None:
        if receipt_id_format not in ("hex", "dec") or submit_id_format not in ("hex", "dec"):
            raise ValueError("id formats are 'hex' or 'dec'")
        self.host, self.port = host, port
        self.credentials = dict(credentials or {"demo": "demo"})
        self.receipt_delay = receipt_delay
        self.outcomes = dict(outcomes or {"DELIVRD": 1.0})
        self.throttle_every = throttle_every
        self.disconnect_every = disconnect_every
        self.disconnect_after = disconnect_after
        self.tps_cap = tps_cap
        self.receipt_id_format = receipt_id_format
        self.submit_id_format = submit_id_format
        self.receipt_tlvs = receipt_tlvs
        self.receipt_on_other_bind = receipt_on_other_bind
        self.duplicate_receipts = duplicate_receipts
        self.receipt_before_response = receipt_before_response
        self.response_delay = response_delay
        self.reject_destinations = set(reject_destinations or ())
        self.redeliver_delay = redeliver_delay
        self.max_redeliveries = max_redeliveries
        self.smsc_system_id = smsc_system_id
        self.random = random.Random(seed)
        self._ids = itertools.count(first_message_id)
        self._tps_buckets: dict[str, _Bucket] = {}

        # observable state
        self.submitted: list[SubmitRecord] = []
        self.delivered: list[DeliverRecord] = []
        self.submits_received = 0
        self.receipts_sent = 0
        self.mo_sent = 0
        self.throttled = 0
        self.disconnects = 0
        self.connections_made = 0
        self.binds = 0
        self.bind_failures = 0
        self.enquire_links = 0
        self.deliver_acked = 0
        self.deliver_nacked = 0
        self.max_outstanding = 0
        self._outstanding = 0

        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self._retry_queue: dict[str | None, list[_PendingDeliver]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> SmscSimulator:
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(lambda: _Connection(self), self.host, self.port, reuse_address=True)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                errors.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                self._server.close()
                for conn in list(self._connections):
                    if conn.transport is not None:
                        conn.transport.abort()
                loop.run_until_complete(self._server.wait_closed())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"smsc-simulator-{self.port}", daemon=True)
        self._thread.start()
        started.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> SmscSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def call(self, fn: Callable, *args, timeout: float = 5.0):
        """Run fn(*args) on the simulator's loop and return its result."""

        async def wrapper():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    # -- switches usable from tests
    def drop_connections(self, *, abort: bool = False) -> int:
        """Drop every open connection now (abort=True: TCP reset); returns how many."""

        def drop_all() -> int:
            conns = [c for c in self._connections if not c.closed]
            for conn in conns:
                conn.drop(abort=abort)
            return len(conns)

        return self.call(drop_all)

    def inject_mo(self, source: str, destination: str, text: str, *, system_id: str | None = None) -> bool:
        """Send a mobile-originated deliver_sm to a receiving bind (of system_id, or any). Long
        texts go in message_payload. Returns True when sent now, False when queued for the next
        receiving bind (like an SMSC storing MO while the ESME is away)."""
        data_coding, chunks = receipts.text_chunks(text)
        payload = receipts.encode_text(text, data_coding)
        fields = {
            "source_addr": source,
            "destination_addr": destination,
            "esm_class": 0,
            "data_coding": data_coding,
            "source_addr_ton": 1,
            "source_addr_npi": 1,
        }
        if len(chunks) == 1 and len(payload) <= 254:
            fields["short_message"] = payload
        else:
            fields["message_payload"] = payload
        pending = _PendingDeliver(kind="mo", fields=fields, message_id=None, text=text)

        def go() -> bool:
            return self._deliver(system_id, pending, None)

        return self.call(go)

    def messages(self) -> list[tuple[str, str]]:
        """Accepted submits reassembled: [(destination, full text)] in arrival order of the last part."""
        out: list[tuple[str, str]] = []
        parts: dict[tuple, dict[int, str]] = {}
        with self._lock:
            records = list(self.submitted)
        for rec in records:
            if rec.udh is None:
                out.append((rec.destination, rec.text))
                continue
            ref, total, seq = rec.udh
            key = (rec.system_id, rec.source, rec.destination, ref, total)
            got = parts.setdefault(key, {})
            got[seq] = rec.text
            if len(got) == total:
                out.append((rec.destination, "".join(got[i] for i in range(1, total + 1))))
                del parts[key]
        return out

    # -- internals (loop thread)
    def _bucket_for(self, system_id: str) -> _Bucket:
        bucket = self._tps_buckets.get(system_id)
        if bucket is None or bucket.rate != self.tps_cap:
            bucket = self._tps_buckets[system_id] = _Bucket(self.tps_cap, max(1.0, self.tps_cap / 10))
        return bucket

    @staticmethod
    def _format_id(number: int, fmt: str) -> str:
        return f"{number:010X}" if fmt == "hex" else f"{number:010d}"

    def _receivers(self, system_id: str | None, exclude: _Connection | None = None) -> list[_Connection]:
        return [
            c
            for c in self._connections
            if not c.closed and c.can_receive and (system_id is None or c.system_id == system_id) and c is not exclude
        ]

    def _deliver(self, system_id: str | None, pending: _PendingDeliver, prefer: _Connection | None) -> bool:
        targets = []
        if prefer is not None and not prefer.closed and prefer.can_receive:
            targets = [prefer]
        if not targets:
            targets = self._receivers(system_id)
        if not targets:
            # keep it for the next bind of this system
            self._retry_queue.setdefault(system_id, []).append(pending)
            return False
        conn = targets[0]
        if not conn.writable:
            self._retry_queue.setdefault(system_id, []).append(pending)
            return False
        pdu = conn.make("deliver_sm", **pending.fields)
        record = DeliverRecord(
            kind=pending.kind,
            message_id=pending.message_id,
            text=pending.text,
            sequence=pdu.sequence,
            attempt=pending.attempt,
        )
        # book-keeping before the write: a test thread reading the socket sees consistent counters
        conn.unacked[pdu.sequence] = (pending, record)
        self.delivered.append(record)
        if pending.kind == "receipt":
            self.receipts_sent += 1
        else:
            self.mo_sent += 1
        conn.transport.write(pdu.generate())
        return True

    def _pick_outcome(self) -> str:
        stats = list(self.outcomes)
        return self.random.choices(stats, weights=[self.outcomes[s] for s in stats])[0]

    def _schedule_receipt(self, conn: _Connection, record: SubmitRecord, delay: float) -> None:
        stat = self._pick_outcome()
        err = "000" if stat == "DELIVRD" else "001"
        now = datetime.now(UTC)
        number = int(record.message_id, 16 if self.submit_id_format == "hex" else 10)
        text_id = self._format_id(number, self.receipt_id_format)
        body = receipts.format_receipt(
            message_id=text_id, stat=stat, err=err, submit_date=now, done_date=now, text=record.text
        )
        fields = {
            "source_addr": record.destination,
            "destination_addr": record.source,
            "esm_class": 0x04,
            "data_coding": 0,
            "short_message": body.encode("ascii", errors="replace"),
        }
        if self.receipt_tlvs:
            fields["receipted_message_id"] = record.message_id
            fields["message_state"] = receipts.STAT_TO_MESSAGE_STATE.get(stat, 7)
        copies = 2 if self.duplicate_receipts and self.random.random() < self.duplicate_receipts else 1

        def send() -> None:
            prefer = conn
            if self.receipt_on_other_bind:
                others = self._receivers(record.system_id, exclude=conn)
                if others:
                    prefer = others[0]
            for _ in range(copies):
                self._deliver(
                    record.system_id,
                    _PendingDeliver(kind="receipt", fields=fields, message_id=record.message_id, text=body),
                    prefer,
                )

        if delay:
            self._loop.call_later(delay, send)
        else:
            send()
