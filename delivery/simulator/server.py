"""A small SMPP 3.4 SMSC simulator for tests, benches and local development (R-DLV-3, R-DLV-4).

asyncio server in a background thread; PDUs are encoded/decoded with smpplib's own PDU classes
(no usable SMPP server package exists, see shared/docs/stack.md). Fault switches: throttling
(every Nth submit, a chosen part, TPS cap), a window limit (0x14), disconnects (also after
accepting a submit, before its answer), slow responses, a hang with TCP open, SMSC-initiated
unbind, a bind limit per account, receipt ordering/duplication/other-bind/local time/id formats/
data_sm, concatenated and bare-address MO, deliver_sm redelivery when the ESME answers with an error
status or drops the bind. Records for assertions: accepted parts, submits per second per account.
docs/smpp.md ("The SMSC simulator") lists every switch.

    sim = SmscSimulator("127.0.0.1", 0, credentials={"demo": "demo"}, receipt_delay=0.1)
    sim.start(); ...; sim.stop()

Or ``manage.py smsc_simulator --port 2775 --system-id demo --password demo``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from delivery.smpp import codec, receipts
from smsplatform.sms_text import text_chunks

from .connection import SimConnection
from .records import DeliverRecord, PendingDeliver, SubmitRecord, TpsBucket

logger = logging.getLogger("delivery.simulator")


class SmscSimulator:
    """SMPP 3.4 SMSC for tests. All options are plain attributes and may be changed while running
    (the loop reads them on each PDU).

    credentials: {system_id: password}; a bind with anything else gets ESME_RBINDFAIL.
    receipt_delay: seconds between submit_sm_resp and the receipt (one receipt per part).
    outcomes: {stat: weight}, e.g. {"DELIVRD": 0.9, "UNDELIV": 0.05, "EXPIRED": 0.05}.
    throttle_every: every Nth submit_sm (global count) gets ESME_RTHROTTLED.
    throttle_parts / throttle_part_times: a concatenated part whose sequence number is in
        throttle_parts (e.g. {2}) gets ESME_RTHROTTLED the first throttle_part_times times that part
        (account, destination, ref, total, seq) arrives; a resend of it is then accepted.
    window_limit: a submit_sm arriving while this many accepted submits of the same bind are still
        unanswered gets ESME_RMSGQFUL (0x14); use with response_delay (instant answers never queue).
    disconnect_every: the Nth submit_sm (global count) is not answered and the connection drops.
    disconnect_after: drop every connection this many seconds after it was opened.
    drop_after_accept_every / drop_after_accept_part / drop_after_accept_times: every Nth accepted
        submit (only parts with UDH seq == drop_after_accept_part when set; at most ..._times
        times, 0 = no limit) is accepted and recorded, then the link drops before its submit_sm_resp
        is written; its receipt comes later on another receiving bind of the account (or the next).
    tps_cap: submits above this rate per system get ESME_RTHROTTLED (burst = tps_cap / 10, >= 1).
    receipt_id_format / submit_id_format: how the receipt's ``id:`` field / submit_sm_resp render the
        message id: "hex" (upper case, zero padded to 10), "dec" (zero padded to 10), "hex_lower"
        (lower case, no padding, e.g. "10a0"), "dec_plain" (no padding, e.g. "4256").
    receipt_tlvs: also send receipted_message_id / message_state TLVs in receipts (id as in
        submit_sm_resp). Off: text-only receipts.
    receipt_timezone: IANA zone of the receipt's submit/done dates (e.g. "Asia/Shanghai"; default UTC).
    data_sm_receipts: share (0..1) of receipts sent as data_sm (message_payload) instead of
        deliver_sm; the ESME must answer data_sm_resp (a generic_nack counts as a refusal).
    mo_as_data_sm: inject_mo() sends data_sm instead of deliver_sm by default.
    receipt_on_other_bind: send receipts on another receiving bind of the same system_id if any.
    duplicate_receipts: probability (0..1) that a receipt is sent twice.
    receipt_before_response: send the receipt before the submit_sm_resp.
    response_delay: delay every submit_sm_resp (lets tests see the ESME's window).
    reject_destinations: destinations answered with ESME_RINVDSTADR (a permanent error).
    reject_parts: concatenated parts with these sequence numbers are answered ESME_RINVDSTADR
        every time (a carrier that takes parts 1-2 of a long message and refuses part 3 for good).
    redeliver_delay / max_redeliveries: deliver_sm answered with an error is sent again.
    max_binds / bind_limits: binds an account may hold at once (transmitter, receiver and
        transceiver all count; 0 = no limit); bind_limits {system_id: n} overrides max_binds. The
        next bind gets ESME_RBINDFAIL (counted in bind_limit_refusals).
    hang_at_submit / hang_seconds: when the Nth submit_sm arrives, stop answering anything (that
        submit included) for hang_seconds, TCP left open, then catch up. Runtime: hang(seconds).
    unbind_at_submit: after the Nth submit_sm, send unbind on that bind. Runtime: unbind().
    unbind_flush_responses: after an SMSC unbind, still write the answers of submits already
        received before closing (default); False: forget them (the submits stay accepted).
    unbind_timeout: close this long after sending unbind when no unbind_resp came.
    access_codes: the accounts' bare service numbers (e.g. {"10690001"}), for reply_mo(bare=True).
    receipt_loss: share (0..1) of receipts never sent: the SMSC gave up on them (e.g. after its
        redeliveries ran out during our outage). The message's state still becomes final, so
        query_sm finds it (counted in receipts_lost).
    query_sm_supported: answer query_sm with the id's state (ENROUTE until its outcome is decided,
        then the receipt's stat; ESME_RQUERYFAIL for an id unknown to the account or asked with
        another source address). False: generic_nack ESME_RINVCMDID, as carriers without it do.
        Runtime: set_state(message_id, stat).
    query_exact_ids: query_sm finds an id only in the exact form submit_sm_resp gave it (padding,
        case), as SMSCs that compare ids as text do; default: any normalised form.
    """

    ID_FORMATS = {"hex": "{:010X}", "dec": "{:010d}", "hex_lower": "{:x}", "dec_plain": "{:d}"}

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        credentials: dict[str, str] | None = None,
        receipt_delay: float = 0.0,
        outcomes: dict[str, float] | None = None,
        throttle_every: int = 0,
        throttle_parts: set[int] | None = None,
        throttle_part_times: int = 1,
        window_limit: int = 0,
        disconnect_every: int = 0,
        disconnect_after: float = 0.0,
        drop_after_accept_every: int = 0,
        drop_after_accept_part: int = 0,
        drop_after_accept_times: int = 0,
        tps_cap: float | None = None,
        receipt_id_format: str = "hex",
        submit_id_format: str = "hex",
        receipt_tlvs: bool = False,
        receipt_timezone: str = "UTC",
        data_sm_receipts: float = 0.0,
        mo_as_data_sm: bool = False,
        receipt_on_other_bind: bool = False,
        duplicate_receipts: float = 0.0,
        receipt_before_response: bool = False,
        response_delay: float = 0.0,
        reject_destinations: set[str] | None = None,
        reject_parts: set[int] | None = None,
        redeliver_delay: float = 0.2,
        max_redeliveries: int = 3,
        max_binds: int = 0,
        bind_limits: dict[str, int] | None = None,
        hang_at_submit: int = 0,
        hang_seconds: float = 0.0,
        unbind_at_submit: int = 0,
        unbind_flush_responses: bool = True,
        unbind_timeout: float = 5.0,
        access_codes: set[str] | None = None,
        receipt_loss: float = 0.0,
        query_sm_supported: bool = True,
        query_exact_ids: bool = False,
        seed: int | None = None,
        smsc_system_id: str = "SIMSC",
        first_message_id: int = 0x1000,
    ) -> None:
        if receipt_id_format not in self.ID_FORMATS or submit_id_format not in self.ID_FORMATS:
            raise ValueError(f"id formats are one of {sorted(self.ID_FORMATS)}")
        self.host, self.port = host, port
        self.credentials = dict(credentials or {"demo": "demo"})
        self.receipt_delay = receipt_delay
        self.outcomes = dict(outcomes or {"DELIVRD": 1.0})
        self.throttle_every = throttle_every
        self.throttle_parts = set(throttle_parts or ())
        self.throttle_part_times = throttle_part_times
        self.window_limit = window_limit
        self.disconnect_every = disconnect_every
        self.disconnect_after = disconnect_after
        self.drop_after_accept_every = drop_after_accept_every
        self.drop_after_accept_part = drop_after_accept_part
        self.drop_after_accept_times = drop_after_accept_times
        self.tps_cap = tps_cap
        self.receipt_id_format = receipt_id_format
        self.submit_id_format = submit_id_format
        self.receipt_tlvs = receipt_tlvs
        self.receipt_timezone = receipt_timezone
        ZoneInfo(receipt_timezone)  # an unknown zone fails here, not in the loop thread
        self.data_sm_receipts = data_sm_receipts
        self.mo_as_data_sm = mo_as_data_sm
        self.receipt_on_other_bind = receipt_on_other_bind
        self.duplicate_receipts = duplicate_receipts
        self.receipt_before_response = receipt_before_response
        self.response_delay = response_delay
        self.reject_destinations = set(reject_destinations or ())
        self.reject_parts = set(reject_parts or ())
        self.redeliver_delay = redeliver_delay
        self.max_redeliveries = max_redeliveries
        self.max_binds = max_binds
        self.bind_limits = dict(bind_limits or {})
        self.hang_at_submit = hang_at_submit
        self.hang_seconds = hang_seconds
        self.unbind_at_submit = unbind_at_submit
        self.unbind_flush_responses = unbind_flush_responses
        self.unbind_timeout = unbind_timeout
        self.access_codes = set(access_codes or ())
        self.receipt_loss = receipt_loss
        self.query_sm_supported = query_sm_supported
        self.query_exact_ids = query_exact_ids
        #: (system_id, normalised id) → [record, stat, done time or None]: what query_sm answers
        self._states: dict[tuple[str | None, str], list] = {}
        self.smsc_system_id = smsc_system_id
        self.random = random.Random(seed)
        self._ids = itertools.count(first_message_id)
        self._mo_refs = itertools.count(1)
        self._tps_buckets: dict[str, TpsBucket] = {}
        self._part_throttles: dict[tuple, int] = {}
        self._accepts_for_drop = 0
        self._hang_new_until = 0.0
        self._hang_new_discard = False

        # observable state
        self.submitted: list[SubmitRecord] = []
        self.delivered: list[DeliverRecord] = []
        self.submit_seconds: dict[str, dict[int, int]] = {}  # system_id -> {unix second: submit_sm received}
        self.peak_binds: dict[str, int] = {}  # system_id -> most binds held at once
        self.submits_received = 0
        self.receipts_sent = 0
        self.mo_sent = 0
        self.throttled = 0
        self.parts_throttled = 0
        self.window_refusals = 0
        self.disconnects = 0
        self.drops_after_accept = 0
        self.responses_lost = 0  # accepted submits whose submit_sm_resp was never written
        self.connections_made = 0
        self.binds = 0
        self.bind_failures = 0
        self.bind_limit_refusals = 0
        self.enquire_links = 0
        self.deliver_acked = 0
        self.deliver_nacked = 0
        self.hangs = 0
        self.discarded_during_hang = 0
        self.unbinds_sent = 0
        self.unbind_resps = 0
        self.refused_while_unbinding = 0
        self.max_outstanding = 0
        self._outstanding = 0
        self.receipts_lost = 0  # receipts the SMSC gave up on (receipt_loss)
        self.queries_received = 0
        self.queries_failed = 0  # answered ESME_RQUERYFAIL

        self._lock = threading.Lock()
        self._connections: set[SimConnection] = set()
        self._retry_queue: dict[str | None, list[PendingDeliver]] = {}
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
                    loop.create_server(lambda: SimConnection(self), self.host, self.port, reuse_address=True)
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

    def hang(self, seconds: float, *, new_connections: bool = True, discard: bool = False) -> int:
        """Stop answering anything (responses, enquire_link, deliver_sm) for `seconds`, TCP left
        open; then write what was held and process the PDUs that arrived meanwhile (discard=True:
        drop them unprocessed, as if lost). new_connections: links opened during the hang hang too.
        Returns the number of links hung."""
        return self.call(self._start_hang, seconds, new_connections, discard)

    def unbind(self, system_id: str | None = None) -> int:
        """Send unbind on every bind (of system_id); each closes after its unbind_resp and, with
        unbind_flush_responses, after the answers owed for submits already received. Submits
        arriving meanwhile get ESME_RINVBNDSTS. Returns the number of binds asked to unbind."""

        def go() -> int:
            conns = [
                c
                for c in self._connections
                if not c.closed and not c.unbinding and c.system_id is not None and system_id in (None, c.system_id)
            ]
            for conn in conns:  # all first: receipts owed by one must not go to another being unbound
                conn.unbinding = True
            for conn in conns:
                conn.send_unbind()
            return len(conns)

        return self.call(go)

    def set_state(self, message_id: str, stat: str, *, system_id: str | None = None) -> None:
        """Decide an accepted id's state (e.g. "UNDELIV") before its receipt; query_sm answers it."""
        key = receipts.normalise_message_id(message_id)
        with self._lock:
            for (sid, mid), entry in self._states.items():
                if mid == key and system_id in (None, sid):
                    entry[1], entry[2] = stat, datetime.now(UTC)

    def active_binds(self, system_id: str) -> int:
        """Binds of this account open now (any bind type; a link being unbound still counts)."""
        return sum(1 for c in list(self._connections) if not c.closed and c.system_id == system_id)

    def inject_mo(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        system_id: str | None = None,
        concat: str | None = None,
        parts: int | None = None,
        order: str | list[int] | None = None,
        reference: int | None = None,
        as_data_sm: bool | None = None,
    ) -> bool:
        """Send a mobile-originated message to a receiving bind (of system_id, or any). Without
        `concat`, one deliver_sm (long texts in message_payload). concat="udh8" | "udh16" | "sar":
        one PDU per part with an 8-bit / 16-bit reference UDH (esm_class 0x40) or sar_* TLVs;
        `parts` forces the number of parts (else GSM-7 153 / UCS-2 67 per part); `order` is
        "reverse", "shuffle" or a list of sequence numbers; `reference` defaults to a counter.
        as_data_sm: send data_sm (default: mo_as_data_sm). Returns True when every PDU was sent
        now, False when some were queued for the next receiving bind (an SMSC storing MO while the
        ESME is away)."""
        command = "data_sm" if (self.mo_as_data_sm if as_data_sm is None else as_data_sm) else "deliver_sm"
        encoding, chunks = text_chunks(text)
        data_coding = codec.DATA_CODING[encoding]
        base = {
            "source_addr": source,
            "destination_addr": destination,
            "esm_class": 0,
            "data_coding": data_coding,
            "source_addr_ton": 1,
            "source_addr_npi": 1,
        }
        pendings: list[PendingDeliver] = []
        if concat is None:
            payload = codec.encode_text(text, data_coding)
            fields = dict(base)
            if command == "deliver_sm" and len(chunks) == 1 and len(payload) <= 254:
                fields["short_message"] = payload
            else:
                fields["message_payload"] = payload
            pendings.append(PendingDeliver(kind="mo", fields=fields, message_id=None, text=text, command=command))
        else:
            if concat not in ("udh8", "udh16", "sar"):
                raise ValueError("concat is 'udh8', 'udh16' or 'sar'")
            if parts:
                size = -(-len(text) // parts)
                chunks = [text[i : i + size] for i in range(0, len(text), size)]
            total = len(chunks)
            ref = next(self._mo_refs) if reference is None else reference
            ref &= 0xFF if concat == "udh8" else 0xFFFF
            seqs = list(range(1, total + 1))
            if order == "reverse":
                seqs.reverse()
            elif order == "shuffle":
                self.random.shuffle(seqs)
            elif order is not None:
                seqs = list(order)
            for seq in seqs:
                chunk = chunks[seq - 1]
                body = codec.encode_text(chunk, data_coding)
                fields = dict(base)
                if concat == "udh8":
                    body = codec.concat_udh(ref, total, seq) + body
                    fields["esm_class"] = codec.ESM_CLASS_UDHI
                elif concat == "udh16":
                    body = bytes((0x06, 0x08, 0x04, ref >> 8, ref & 0xFF, total, seq)) + body
                    fields["esm_class"] = codec.ESM_CLASS_UDHI
                else:
                    fields.update(sar_msg_ref_num=ref, sar_total_segments=total, sar_segment_seqnum=seq)
                fields["short_message" if command == "deliver_sm" else "message_payload"] = body
                pendings.append(PendingDeliver(kind="mo", fields=fields, message_id=None, text=chunk, command=command))

        def go() -> bool:
            sent = [self._deliver(system_id, pending, None) for pending in pendings]
            return all(sent)

        return self.call(go)

    def reply_mo(self, handset: str, text: str, *, bare: bool = False, **options) -> bool:
        """The handset answers the last message it was sent: an MO to that message's source
        address on that account. bare=True: to the account's bare access code instead (the longest
        of access_codes that starts the source, i.e. without the tenant's extension). Other
        options as inject_mo()."""
        wanted = handset.lstrip("+")
        with self._lock:
            last = next((r for r in reversed(self.submitted) if r.destination.lstrip("+") == wanted), None)
        if last is None:
            raise ValueError(f"nothing was sent to {handset}")
        destination = last.source
        if bare:
            codes = [c for c in self.access_codes if last.source.startswith(c)]
            if not codes:
                raise ValueError(f"no access code is a prefix of {last.source!r}")
            destination = max(codes, key=len)
        return self.inject_mo(last.destination, destination, text, system_id=last.system_id, **options)

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

    # -- records for assertions
    def accepted_parts(self, system_id: str | None = None) -> list[tuple[str, str, tuple[int, int, int] | None, str]]:
        """Every accepted part, in order: (system_id, destination, (ref, total, seq) or None, text).
        Its length is "parts accepted", to compare with parts billed."""
        with self._lock:
            records = list(self.submitted)
        return [(r.system_id, r.destination, r.udh, r.text) for r in records if system_id in (None, r.system_id)]

    def duplicate_parts(self) -> dict[tuple, int]:
        """Parts accepted more than once: {(destination, (ref, total, seq) or None, text): times}.
        Two sends of the same text to the same handset look the same: give tests distinct texts."""
        counts: dict[tuple, int] = {}
        for _system_id, destination, udh, text in self.accepted_parts():
            key = (destination, udh, text)
            counts[key] = counts.get(key, 0) + 1
        return {key: n for key, n in counts.items() if n > 1}

    def submits_per_second(self, system_id: str | None = None) -> dict[int, int]:
        """{unix second: submit_sm received} for one account, or summed over all of them."""
        with self._lock:
            tables = [t for sid, t in self.submit_seconds.items() if system_id in (None, sid)]
            merged: dict[int, int] = {}
            for table in tables:
                for second, n in table.items():
                    merged[second] = merged.get(second, 0) + n
        return dict(sorted(merged.items()))

    def stats(self) -> dict:
        """The counters as a dict (the CLI prints / writes it)."""
        names = (
            "submits_received throttled parts_throttled window_refusals disconnects drops_after_accept "
            "responses_lost receipts_sent mo_sent binds bind_failures bind_limit_refusals enquire_links "
            "deliver_acked deliver_nacked hangs discarded_during_hang unbinds_sent unbind_resps "
            "refused_while_unbinding max_outstanding receipts_lost queries_received queries_failed"
        ).split()
        out = {name: getattr(self, name) for name in names}
        out["accepted"] = len(self.submitted)
        out["duplicate_parts"] = len(self.duplicate_parts())
        out["peak_binds"] = dict(self.peak_binds)
        with self._lock:  # the loop thread adds to these tables under the same lock
            out["submits_per_second"] = {
                sid: {str(k): v for k, v in sorted(t.items())} for sid, t in self.submit_seconds.items()
            }
        return out

    # -- internals (loop thread)
    def _start_hang(self, seconds: float, new_connections: bool, discard: bool) -> int:
        until = self._loop.time() + seconds
        conns = [c for c in self._connections if not c.closed]
        for conn in conns:
            conn.start_hang(until, discard)
        if new_connections:
            self._hang_new_until, self._hang_new_discard = until, discard
        self.hangs += 1
        return len(conns)

    def _drop_after_this_accept(self, udh: tuple[int, int, int] | None) -> bool:
        if not self.drop_after_accept_every:
            return False
        if self.drop_after_accept_part and (udh is None or udh[2] != self.drop_after_accept_part):
            return False
        if self.drop_after_accept_times and self.drops_after_accept >= self.drop_after_accept_times:
            return False
        self._accepts_for_drop += 1
        return self._accepts_for_drop % self.drop_after_accept_every == 0

    def _bucket_for(self, system_id: str) -> TpsBucket:
        bucket = self._tps_buckets.get(system_id)
        if bucket is None or bucket.rate != self.tps_cap:
            bucket = self._tps_buckets[system_id] = TpsBucket(self.tps_cap, max(1.0, self.tps_cap / 10))
        return bucket

    @classmethod
    def _format_id(cls, number: int, fmt: str) -> str:
        return cls.ID_FORMATS[fmt].format(number)

    def _receivers(self, system_id: str | None, exclude: SimConnection | None = None) -> list[SimConnection]:
        return [
            c
            for c in self._connections
            if c.writable  # not closed, and not closing either (a killed peer's side, before connection_lost)
            and not c.unbinding
            and c.can_receive
            and (system_id is None or c.system_id == system_id)
            and c is not exclude
        ]

    def _deliver(self, system_id: str | None, pending: PendingDeliver, prefer: SimConnection | None) -> bool:
        targets = []
        if prefer is not None and prefer.writable and not prefer.unbinding and prefer.can_receive:
            targets = [prefer]
        if not targets:
            # Another bind of the account that can take it now. A closing one cannot: parking the
            # receipt for the account's next bind while the listener was up lost it (issue 16).
            targets = self._receivers(system_id)
        if not targets:
            # keep it for the next bind of this system
            self._retry_queue.setdefault(system_id, []).append(pending)
            return False
        conn = targets[0]
        pdu = conn.make(pending.command, **pending.fields)
        record = DeliverRecord(
            kind=pending.kind,
            message_id=pending.message_id,
            text=pending.text,
            sequence=pdu.sequence,
            attempt=pending.attempt,
            command=pending.command,
        )
        # book-keeping before the write: a test thread reading the socket sees consistent counters
        conn.unacked[pdu.sequence] = (pending, record)
        self.delivered.append(record)
        if pending.kind == "receipt":
            self.receipts_sent += 1
        else:
            self.mo_sent += 1
        conn.write(pdu.generate())
        return True

    def _pick_outcome(self) -> str:
        stats = list(self.outcomes)
        return self.random.choices(stats, weights=[self.outcomes[s] for s in stats])[0]

    def _schedule_receipt(self, conn: SimConnection | None, record: SubmitRecord, delay: float) -> None:
        """One receipt for an accepted part; conn None: to any receiving bind of the account."""
        stat = self._pick_outcome()
        err = "000" if stat == "DELIVRD" else "001"
        entry = self._states.get((record.system_id, receipts.normalise_message_id(record.message_id)))
        if entry is not None and entry[1] != "ENROUTE":
            stat = entry[1]  # set_state() decided it

        def finish() -> None:  # the outcome is known when its receipt would leave (query_sm sees it)
            with self._lock:
                if entry is not None and entry[1] == "ENROUTE":
                    entry[1], entry[2] = stat, datetime.now(UTC)

        if self.receipt_loss and (self.receipt_loss >= 1 or self.random.random() < self.receipt_loss):
            self.receipts_lost += 1
            if delay:
                self._loop.call_later(delay, finish)
            else:
                finish()
            return
        now = datetime.now(ZoneInfo(self.receipt_timezone))  # carriers date receipts in local time
        text_id = self._format_id(record.number, self.receipt_id_format)
        body = receipts.format_receipt(
            message_id=text_id, stat=stat, err=err, submit_date=now, done_date=now, text=record.text
        )
        command = "deliver_sm"
        if self.data_sm_receipts and (self.data_sm_receipts >= 1 or self.random.random() < self.data_sm_receipts):
            command = "data_sm"
        fields = {
            "source_addr": record.destination,
            "destination_addr": record.source,
            "esm_class": 0x04,
            "data_coding": 0,
            "short_message" if command == "deliver_sm" else "message_payload": body.encode("ascii", errors="replace"),
        }
        if self.receipt_tlvs:
            fields["receipted_message_id"] = record.message_id
            fields["message_state"] = receipts.STAT_TO_MESSAGE_STATE.get(stat, 7)
        copies = 2 if self.duplicate_receipts and self.random.random() < self.duplicate_receipts else 1

        def send() -> None:
            finish()
            prefer = conn
            if self.receipt_on_other_bind:
                others = self._receivers(record.system_id, exclude=conn)
                if others:
                    prefer = others[0]
            for _ in range(copies):
                self._deliver(
                    record.system_id,
                    PendingDeliver(
                        kind="receipt", fields=fields, message_id=record.message_id, text=body, command=command
                    ),
                    prefer,
                )

        if delay:
            self._loop.call_later(delay, send)
        else:
            send()
