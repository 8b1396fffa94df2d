"""One bind of the simulator (an asyncio protocol): bind and its limits, submit_sm with the fault
switches, query_sm, deliver_sm answers and redelivery, hang with TCP open, SMSC-initiated unbind.
`sim` is the SmscSimulator (server.py) that owns the bind: options, counters and records live there.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time

from smpplib import consts, smpp

from delivery.smpp import codec, receipts
from delivery.smpp.codec import pdu_text

from .records import BIND_COMMANDS, DeliverRecord, PendingDeliver, SequenceSource, SubmitRecord

logger = logging.getLogger("delivery.simulator")


class SimConnection(asyncio.Protocol):
    def __init__(self, sim) -> None:
        self.sim = sim
        self.seq = SequenceSource()
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.system_id: str | None = None
        self.can_transmit = False
        self.can_receive = False
        self.closed = False
        self.unacked: dict[int, tuple[PendingDeliver, DeliverRecord]] = {}
        self.timers: list[asyncio.TimerHandle] = []
        # accepted submits whose submit_sm_resp is not written yet: sequence -> record
        self.pending: dict[int, SubmitRecord] = {}
        self.max_outstanding = 0  # most unanswered accepted submits on this bind at once
        # hang: nothing is read or written until hang_until (loop time); PDUs wait here
        self.hang_until = 0.0
        self.hang_discard = False
        self.held_in: list = []
        self.held_out: list[bytes] = []
        # SMSC-initiated unbind in progress: no new submits, no new deliver_sm
        self.unbinding = False
        self.unbind_sequence: int | None = None
        self.unbind_acked = False

    @property
    def pending_responses(self) -> int:
        return len(self.pending)

    # -- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        sim = self.sim
        sim._connections.add(self)
        sim.connections_made += 1
        if sim.disconnect_after:
            self.timers.append(sim._loop.call_later(sim.disconnect_after, self.drop))
        if sim._hang_new_until > sim._loop.time():  # a hung SMSC does not answer new links either
            self.start_hang(sim._hang_new_until, sim._hang_new_discard)

    def _cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        # Accepted submits whose answer will never be written stay accepted: the SMSC delivers them
        # and sends their receipts to another bind (or the next one), as a real SMSC does.
        sim = self.sim
        sim._outstanding -= len(self.pending)
        sim.responses_lost += len(self.pending)
        for record in self.pending.values():
            if record.registered_delivery & 0x03:
                sim._schedule_receipt(None, record, sim.receipt_delay)
        self.pending.clear()
        self.held_out.clear()
        self.held_in.clear()

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
            self.arrived(pdu)
            if self.hung or self.held_in:
                self.held_in.append(pdu)  # TCP stays open; the PDU waits for the end of the hang
                continue
            self.handle(pdu)
            if self.closed:
                return

    def arrived(self, pdu) -> None:
        """Count a PDU when it reaches the SMSC (before any hang holds it back)."""
        if pdu.command != "submit_sm":
            return
        sim = self.sim
        sim.submits_received += 1
        pdu.sim_number = sim.submits_received
        second = int(time.time())
        with sim._lock:
            per_second = sim.submit_seconds.setdefault(self.system_id or "", {})
            per_second[second] = per_second.get(second, 0) + 1
        if sim.hang_at_submit and sim.submits_received == sim.hang_at_submit:
            sim._start_hang(sim.hang_seconds, new_connections=True, discard=False)

    # -- helpers
    @property
    def writable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    @property
    def hung(self) -> bool:
        return self.hang_until > 0

    def make(self, command: str, **fields):
        sequence = fields.pop("sequence", None)
        pdu = smpp.make_pdu(command, client=self.seq, **fields)
        if sequence is not None:
            pdu.sequence = sequence  # smpplib ignores a sequence kwarg (its property shadows it)
        return pdu

    def write(self, data: bytes) -> None:
        if self.hung:
            self.held_out.append(data)  # a hung SMSC writes nothing; sent when it resumes
        else:
            self.transport.write(data)

    def send(self, command: str, **fields) -> int:
        if not self.writable:
            return 0
        pdu = self.make(command, **fields)
        self.write(pdu.generate())
        return pdu.sequence

    def drop(self, *, abort: bool = False, count: bool = True) -> None:
        """Drop the connection. Default: like an SMSC that closes cleanly — answers already written
        are flushed, a FIN follows, later PDUs are read and ignored, the socket closes 0.5 s later
        (so the ESME sees every answer, then EOF, not a reset). abort=True: TCP RST at once."""
        if self.closed or self.transport is None:
            return
        if count:
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

    # -- hang
    def start_hang(self, until: float, discard: bool) -> None:
        if until <= self.hang_until:
            return
        self.hang_until = until
        self.hang_discard = discard
        self.timers.append(self.sim._loop.call_at(until, self._resume, until))

    def _resume(self, until: float) -> None:
        if self.closed or until != self.hang_until:
            return  # dropped meanwhile, or the hang was extended
        self.hang_until = 0.0
        for data in self.held_out:
            self.transport.write(data)
        self.held_out.clear()
        held, self.held_in = self.held_in, []
        if self.hang_discard:
            self.sim.discarded_during_hang += len(held)
            return
        for i, pdu in enumerate(held):
            if self.closed:
                return
            if self.hung:  # a new hang started while catching up
                self.held_in = held[i:] + self.held_in
                return
            self.handle(pdu)

    # -- SMSC-initiated unbind
    def start_unbind(self) -> None:
        if self.closed or self.unbinding or self.system_id is None:
            return
        self.unbinding = True
        self.send_unbind()

    def send_unbind(self) -> None:
        sim = self.sim
        sim.unbinds_sent += 1
        if not sim.unbind_flush_responses:
            # the SMSC forgets the answers it owes (the submits stay accepted; receipts follow)
            self._forget_pending()
        self.unbind_sequence = self.send("unbind")
        self.timers.append(sim._loop.call_later(sim.unbind_timeout, self.drop))  # no unbind_resp: close

    def _forget_pending(self) -> None:
        sim = self.sim
        for record in list(self.pending.values()):
            sim._outstanding -= 1
            sim.responses_lost += 1
            if record.registered_delivery & 0x03:
                sim._schedule_receipt(None, record, sim.receipt_delay)
        self.pending.clear()

    def _maybe_finish_unbind(self) -> None:
        # after unbind_resp, close once every answer owed for submits already received is written
        if self.unbinding and self.unbind_acked and not self.pending:
            self.drop(count=False)

    # -- PDU handling
    def handle(self, pdu) -> None:
        sim = self.sim
        command = pdu.command
        if command in BIND_COMMANDS:
            self.on_bind(pdu)
        elif command == "submit_sm":
            self.on_submit(pdu)
            if sim.unbind_at_submit and getattr(pdu, "sim_number", 0) == sim.unbind_at_submit:
                self.start_unbind()  # with submits in flight: their answers still go out first
        elif command in ("deliver_sm_resp", "data_sm_resp"):
            self.on_deliver_resp(pdu)
        elif command == "query_sm":
            self.on_query(pdu)
        elif command == "enquire_link":
            sim.enquire_links += 1
            self.send("enquire_link_resp", sequence=pdu.sequence)
        elif command == "enquire_link_resp":
            pass
        elif command == "unbind":
            self.send("unbind_resp", sequence=pdu.sequence)
            self.closed = True
            self.transport.close()
        elif command == "unbind_resp":
            if self.unbinding and pdu.sequence == self.unbind_sequence:
                sim.unbind_resps += 1
                self.unbind_acked = True
                self._maybe_finish_unbind()
        elif command == "generic_nack":
            if pdu.sequence in self.unacked:  # e.g. an ESME that does not know data_sm
                self.on_deliver_resp(pdu)
        else:
            self.send("generic_nack", sequence=pdu.sequence, status=consts.SMPP_ESME_RINVCMDID)

    def on_bind(self, pdu) -> None:
        sim = self.sim
        resp = BIND_COMMANDS[pdu.command][0]
        if self.system_id is not None:
            self.send(resp, sequence=pdu.sequence, status=consts.SMPP_ESME_RALYBND)
            return
        system_id = pdu_text(pdu.system_id)
        password = pdu_text(pdu.password)
        expected = sim.credentials.get(system_id)
        if expected is None or expected != password:
            sim.bind_failures += 1
            self.send(resp, sequence=pdu.sequence, status=consts.SMPP_ESME_RBINDFAIL)
            return
        limit = sim.bind_limits.get(system_id, sim.max_binds)
        if limit and sim.active_binds(system_id) >= limit:
            # every bind type counts; the link stays open (the ESME may retry or close)
            sim.bind_failures += 1
            sim.bind_limit_refusals += 1
            self.send(resp, sequence=pdu.sequence, status=consts.SMPP_ESME_RBINDFAIL)
            return
        self.system_id = system_id
        _, self.can_transmit, self.can_receive = BIND_COMMANDS[pdu.command]
        sim.binds += 1
        sim.peak_binds[system_id] = max(sim.peak_binds.get(system_id, 0), sim.active_binds(system_id))
        self.send(resp, sequence=pdu.sequence, system_id=sim.smsc_system_id)
        if self.can_receive:
            for pending in sim._retry_queue.pop(system_id, []) + sim._retry_queue.pop(None, []):
                sim._loop.call_soon(sim._deliver, system_id, pending, None)

    def _refuse(self, pdu, status: int) -> None:
        self.send("submit_sm_resp", sequence=pdu.sequence, status=status)

    def on_submit(self, pdu) -> None:
        sim = self.sim
        number = getattr(pdu, "sim_number", sim.submits_received)
        if not self.can_transmit or self.unbinding:
            if self.unbinding:
                sim.refused_while_unbinding += 1
            self._refuse(pdu, consts.SMPP_ESME_RINVBNDSTS)
            return
        if sim.window_limit and len(self.pending) >= sim.window_limit:
            sim.window_refusals += 1
            self._refuse(pdu, consts.SMPP_ESME_RMSGQFUL)
            return
        if sim.disconnect_every and number % sim.disconnect_every == 0:
            self.drop()  # this submit is lost (never answered); earlier answers are flushed
            return
        if sim.throttle_every and number % sim.throttle_every == 0:
            sim.throttled += 1
            self._refuse(pdu, consts.SMPP_ESME_RTHROTTLED)
            return
        if sim.tps_cap and not sim._bucket_for(self.system_id).try_take(time.monotonic()):
            sim.throttled += 1
            self._refuse(pdu, consts.SMPP_ESME_RTHROTTLED)
            return
        destination = pdu_text(pdu.destination_addr)
        if sim.reject_destinations and destination in sim.reject_destinations:
            self._refuse(pdu, consts.SMPP_ESME_RINVDSTADR)
            return

        esm_class = pdu.esm_class or 0
        data_coding = pdu.data_coding or 0
        short_message = pdu.short_message or b""
        if not short_message and getattr(pdu, "message_payload", None):
            short_message = pdu.message_payload
        udh = None
        if esm_class & codec.ESM_CLASS_UDHI:
            udh, short_message = codec.parse_udh(short_message)
        elif getattr(pdu, "sar_total_segments", None):
            udh = (pdu.sar_msg_ref_num or 0, pdu.sar_total_segments, pdu.sar_segment_seqnum or 0)
        if udh is not None and udh[2] in sim.reject_parts and udh[1] > 1:
            self._refuse(pdu, consts.SMPP_ESME_RINVDSTADR)  # a permanent refusal of that part only
            return
        if udh is not None and udh[2] in sim.throttle_parts and udh[1] > 1:
            key = (self.system_id, destination, udh)
            with sim._lock:
                times = sim._part_throttles.get(key, 0)
                if times < sim.throttle_part_times:
                    sim._part_throttles[key] = times + 1
            if times < sim.throttle_part_times:
                sim.throttled += 1
                sim.parts_throttled += 1
                self._refuse(pdu, consts.SMPP_ESME_RTHROTTLED)
                return

        id_number = next(sim._ids)
        message_id = sim._format_id(id_number, sim.submit_id_format)
        record = SubmitRecord(
            system_id=self.system_id,
            source=pdu_text(pdu.source_addr),
            destination=destination,
            data_coding=data_coding,
            esm_class=esm_class,
            registered_delivery=pdu.registered_delivery or 0,
            udh=udh,
            text=codec.decode_text(short_message, data_coding),
            message_id=message_id,
            received_at=time.monotonic(),
            sequence=pdu.sequence,
            number=id_number,
        )
        with sim._lock:
            sim.submitted.append(record)
            sim._states[(self.system_id, receipts.normalise_message_id(message_id))] = [record, "ENROUTE", None]
        wants_receipt = bool(record.registered_delivery & 0x03)

        if sim._drop_after_this_accept(udh):
            # accepted (it will be delivered and receipted, on another bind), but the link dies
            # before the submit_sm_resp leaves
            sim.drops_after_accept += 1
            if wants_receipt:
                sim._schedule_receipt(None, record, sim.receipt_delay)
            self.drop()
            return

        sim._outstanding += 1
        sim.max_outstanding = max(sim.max_outstanding, sim._outstanding)

        def respond() -> None:
            if self.pending.pop(pdu.sequence, None) is None:
                return  # forgotten (link dropped or unbind without flush): receipts already scheduled
            sim._outstanding -= 1
            if wants_receipt and sim.receipt_before_response:
                sim._schedule_receipt(self, record, 0.0)
            self.send("submit_sm_resp", sequence=pdu.sequence, message_id=message_id)
            if wants_receipt and not sim.receipt_before_response:
                sim._schedule_receipt(self, record, sim.receipt_delay)
            self._maybe_finish_unbind()

        self.pending[pdu.sequence] = record
        self.max_outstanding = max(self.max_outstanding, len(self.pending))
        if sim.response_delay:
            if len(self.timers) > 1000:
                now = sim._loop.time()
                self.timers = [t for t in self.timers if not t.cancelled() and t.when() > now]
            self.timers.append(sim._loop.call_later(sim.response_delay, respond))
        else:
            respond()

    def on_query(self, pdu) -> None:
        """query_sm (issue 21): the state of an id this account submitted from that source address;
        ESME_RQUERYFAIL for an id it does not know (or asked with another source address);
        generic_nack ESME_RINVCMDID when query_sm_supported is off (many carriers)."""
        sim = self.sim
        sim.queries_received += 1
        if not sim.query_sm_supported:
            self.send("generic_nack", sequence=pdu.sequence, status=consts.SMPP_ESME_RINVCMDID)
            return
        asked = pdu_text(pdu.message_id)
        entry = sim._states.get((self.system_id, receipts.normalise_message_id(asked)))
        if entry is not None and sim.query_exact_ids and asked != entry[0].message_id:
            entry = None  # this SMSC compares the id as text: only the form it gave counts
        if self.system_id is None or entry is None or entry[0].source != pdu_text(pdu.source_addr):
            sim.queries_failed += 1
            self.send("query_sm_resp", sequence=pdu.sequence, status=consts.SMPP_ESME_RQUERYFAIL)
            return
        _record, stat, done = entry
        self.send(
            "query_sm_resp",
            sequence=pdu.sequence,
            message_id=asked,
            final_date=f"{done:%y%m%d%H%M%S}000+" if done is not None else "",
            message_state=receipts.STAT_TO_MESSAGE_STATE.get(stat, 7),
            error_code=0 if stat in ("DELIVRD", "ENROUTE", "ACCEPTD") else 1,
        )

    def on_deliver_resp(self, pdu) -> None:
        entry = self.unacked.pop(pdu.sequence, None)
        sim = self.sim
        if entry is None:
            return
        pending, record = entry
        record.status = pdu.status
        if pdu.status == consts.SMPP_ESME_ROK and pdu.command != "generic_nack":
            sim.deliver_acked += 1
            return
        sim.deliver_nacked += 1
        if pending.attempt <= sim.max_redeliveries:
            pending.attempt += 1
            sim._loop.call_later(sim.redeliver_delay, sim._deliver, self.system_id, pending, None)
