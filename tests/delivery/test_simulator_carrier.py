"""Carrier behaviours of the SMSC simulator (issue 10 item 9, issue 20 item 7), each proven against a
plain smpplib client on a real loopback socket: part throttling, window limit, drop after accept,
local-time receipts, id formats, data_sm, concatenated and bare-address MO, per-second counters.
These are the faults the delivery tests (R-DLV-3, R-DLV-4, R-DLV-5, R-BIL-2, R-BIL-8) run against."""

import select
import socket
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
import smpplib.client
from smpplib import consts, exceptions

from delivery.simulator.server import SmscSimulator
from delivery.smpp.codec import ConcatBuffer, concat_udh, decode_text, parse_udh
from tests.delivery.conftest import PASSWORD, SYSTEM_ID


@pytest.fixture(name="bind")
def bind_fixture():
    """bind(sim, mode="transceiver", system_id=..., password=...) -> a bound plain smpplib Client."""
    clients = []

    def make(sim, mode="transceiver", *, system_id=SYSTEM_ID, password=PASSWORD):
        client = smpplib.client.Client("127.0.0.1", sim.port, timeout=5, allow_unknown_opt_params=True)
        client.connect()
        client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        clients.append(client)
        getattr(client, f"bind_{mode}")(system_id=system_id, password=password)
        return client

    yield make
    for client in clients:
        if client._socket is not None:
            client._socket.close()
            client._socket = None


def submit(client, *, text=b"hi", destination="8613800000001", source="10690001", udh=None, **kwargs):
    kwargs.setdefault("registered_delivery", 1)
    if udh is not None:
        text = concat_udh(*udh) + text
        kwargs["esm_class"] = 0x40
    pdu = client.send_message(source_addr=source, destination_addr=destination, short_message=text, **kwargs)
    return pdu.sequence


def answer(client, pdu, status=0):
    resp = smpplib.smpp.make_pdu(f"{pdu.command}_resp", client=client, status=status)
    resp.sequence = pdu.sequence
    client.send_pdu(resp)


def read_until(client, command, *, timeout=5.0, seen=None, ack=True):
    """Read PDUs until one with `command`; others go to `seen`; deliver_sm/data_sm are answered OK."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pdu = client.read_pdu()
        if pdu.command == command:
            return pdu
        if seen is not None:
            seen.append(pdu)
        if ack and pdu.command in ("deliver_sm", "data_sm"):
            answer(client, pdu)
    raise AssertionError(f"no {command} within {timeout}s")


def quiet(client, seconds):
    """True when nothing arrives on the socket for `seconds`."""
    readable, _, _ = select.select([client._socket], [], [], seconds)
    return not readable


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


# -- 1. throttling a chosen part, window limit ------------------------------------------------------


def test_chosen_part_is_throttled_once_then_its_resend_is_accepted_r_dlv_3(smsc_factory, bind):
    sim = smsc_factory(throttle_parts={2})
    client = bind(sim)
    statuses = {}
    for seq in (1, 2, 3):
        submit(client, text=f"p{seq}".encode(), udh=(7, 3, seq), registered_delivery=0)
        statuses[seq] = read_until(client, "submit_sm_resp").status
    assert statuses == {1: 0, 2: consts.SMPP_ESME_RTHROTTLED, 3: 0}
    submit(client, text=b"p2", udh=(7, 3, 2), registered_delivery=0)  # the part alone, same UDH
    assert read_until(client, "submit_sm_resp").status == 0
    assert sim.parts_throttled == 1
    assert sorted(p[2] for p in sim.accepted_parts()) == [(7, 3, 1), (7, 3, 2), (7, 3, 3)]
    assert sim.messages() == [("8613800000001", "p1p2p3")]
    assert sim.duplicate_parts() == {}


def test_part_throttle_applies_per_message_and_can_repeat(smsc_factory, bind):
    sim = smsc_factory(throttle_parts={1}, throttle_part_times=2)
    client = bind(sim)
    got = []
    for ref in (1, 1, 1, 2):  # message 1 part 1 three times, then message 2 part 1
        submit(client, text=b"x", udh=(ref, 2, 1), registered_delivery=0)
        got.append(read_until(client, "submit_sm_resp").status)
    assert got == [consts.SMPP_ESME_RTHROTTLED, consts.SMPP_ESME_RTHROTTLED, 0, consts.SMPP_ESME_RTHROTTLED]
    submit(client, text=b"single", registered_delivery=0)  # not concatenated: never part-throttled
    assert read_until(client, "submit_sm_resp").status == 0


def test_window_limit_answers_the_extra_outstanding_submit_with_0x14_r_dlv_3(smsc_factory, bind):
    sim = smsc_factory(window_limit=3, response_delay=0.3)
    client = bind(sim)
    sequences = [submit(client, text=f"w{i}".encode(), registered_delivery=0) for i in range(4)]
    first = read_until(client, "submit_sm_resp")
    assert (first.sequence, first.status) == (sequences[3], consts.SMPP_ESME_RMSGQFUL)  # refused at once
    rest = [read_until(client, "submit_sm_resp") for _ in range(3)]
    assert [(r.sequence, r.status) for r in rest] == [(s, 0) for s in sequences[:3]]
    assert sim.window_refusals == 1
    assert len(sim.submitted) == 3
    submit(client, text=b"w4", registered_delivery=0)  # the window is free again
    assert read_until(client, "submit_sm_resp").status == 0


# -- 2. drop after accepting, before answering ---------------------------------------------------------


def test_drop_after_accept_keeps_the_part_and_receipts_it_on_another_bind_r_dlv_4(smsc_factory, bind):
    sim = smsc_factory(drop_after_accept_every=1, drop_after_accept_part=1, drop_after_accept_times=1)
    listener = bind(sim, "receiver")
    sender = bind(sim, "transmitter")
    for seq in (1, 2, 3):
        submit(sender, text=f"d{seq}".encode(), udh=(9, 3, seq))
    with pytest.raises(exceptions.ConnectionError):
        sender.read_pdu()  # EOF, and no submit_sm_resp for the accepted part 1 before it
    assert sim.drops_after_accept == 1
    assert [r.udh for r in sim.submitted] == [(9, 3, 1)]  # accepted; parts 2 and 3 never processed
    receipt = read_until(listener, "deliver_sm", ack=False)
    answer(listener, receipt)
    assert receipt.esm_class == 0x04
    assert b"id:" + sim.submitted[0].message_id.encode() in receipt.short_message

    again = bind(sim, "transmitter")  # only parts 2 and 3 are resent: the drop happens once
    for seq in (2, 3):
        submit(again, text=f"d{seq}".encode(), udh=(9, 3, seq))
        assert read_until(again, "submit_sm_resp").status == 0
    assert sim.messages() == [("8613800000001", "d1d2d3")]
    assert sim.duplicate_parts() == {}


def test_submits_unanswered_when_the_link_drops_still_get_receipts(smsc_factory, bind):
    """A real SMSC delivers what it accepted even when its answer was lost (R-DLV-4)."""
    sim = smsc_factory(drop_after_accept_every=2, response_delay=0.3)
    listener = bind(sim, "receiver")
    sender = bind(sim, "transmitter")
    submit(sender, text=b"first")
    submit(sender, text=b"second")  # accepted, then the link drops: "first" is still unanswered
    with pytest.raises(exceptions.ConnectionError):
        sender.read_pdu()
    assert sim.responses_lost == 1
    receipts = [read_until(listener, "deliver_sm") for _ in range(2)]
    ids = {r.short_message.split(b" ")[0] for r in receipts}
    assert ids == {b"id:" + r.message_id.encode() for r in sim.submitted}


# -- 3. local-time receipts ------------------------------------------------------------------------------


def test_receipt_dates_follow_the_configured_time_zone_r_dlv_4(smsc_factory, bind):
    sim = smsc_factory(receipt_timezone="Asia/Shanghai")
    client = bind(sim)
    before = datetime.now(ZoneInfo("Asia/Shanghai"))
    submit(client)
    receipt = read_until(client, "deliver_sm")
    after = datetime.now(ZoneInfo("Asia/Shanghai"))
    text = receipt.short_message.decode()
    stamps = {f"{t:%y%m%d%H%M}" for t in (before, after)}
    assert any(f"done date:{s}" in text for s in stamps)
    utc = {f"{t.astimezone(ZoneInfo('UTC')):%y%m%d%H%M}" for t in (before, after)}
    assert not any(f"done date:{s}" in text for s in utc)  # 8 h apart from UTC


def test_unknown_receipt_time_zone_is_refused_at_construction():
    with pytest.raises(ZoneInfoNotFoundError):
        SmscSimulator(receipt_timezone="Mars/Olympus")


def test_receipt_time_zone_can_change_while_running(smsc_factory, bind):
    sim = smsc_factory()
    client = bind(sim)
    sim.receipt_timezone = "America/New_York"
    now = datetime.now(ZoneInfo("America/New_York"))
    submit(client)
    text = read_until(client, "deliver_sm").short_message.decode()
    assert any(f"done date:{t:%y%m%d%H%M}" in text for t in (now, now + timedelta(minutes=1)))


# -- 4. message id formats ----------------------------------------------------------------------------------


def test_lower_case_hex_submit_ids_with_decimal_text_id_and_hex_tlv_r_dlv_4(smsc_factory, bind):
    sim = smsc_factory(
        submit_id_format="hex_lower", receipt_id_format="dec_plain", receipt_tlvs=True, first_message_id=0x10A0
    )
    client = bind(sim)
    submit(client)
    resp = read_until(client, "submit_sm_resp")
    receipt = read_until(client, "deliver_sm")
    assert resp.message_id == b"10a0"
    assert receipt.short_message.startswith(b"id:4256 ")  # 0x10a0 in decimal
    assert receipt.receipted_message_id.rstrip(b"\0") == b"10a0"  # the TLV carries the submit_sm_resp id
    assert receipt.message_state == 2  # DELIVERED


def test_text_only_receipts_with_decimal_ids_against_hex_submit_ids(smsc_factory, bind):
    sim = smsc_factory(submit_id_format="hex", receipt_id_format="dec", first_message_id=255)
    client = bind(sim)
    submit(client)
    assert read_until(client, "submit_sm_resp").message_id == b"00000000FF"
    receipt = read_until(client, "deliver_sm")
    assert receipt.short_message.startswith(b"id:0000000255 ")
    assert receipt.receipted_message_id is None
    assert receipt.message_state is None


def test_unknown_id_format_is_refused():
    with pytest.raises(ValueError, match="id formats"):
        SmscSimulator(submit_id_format="base64")


# -- 5. data_sm -----------------------------------------------------------------------------------------------


def test_receipts_as_data_sm_expect_data_sm_resp_r_dlv_4(smsc_factory, bind):
    sim = smsc_factory(data_sm_receipts=1.0, receipt_tlvs=True)
    client = bind(sim)
    submit(client)
    message_id = read_until(client, "submit_sm_resp").message_id
    receipt = read_until(client, "data_sm", ack=False)
    assert receipt.esm_class == 0x04
    assert receipt.message_payload.startswith(b"id:" + message_id)
    assert receipt.receipted_message_id.rstrip(b"\0") == message_id
    answer(client, receipt)
    assert wait_for(lambda: sim.deliver_acked == 1)
    assert [(d.command, d.kind, d.status) for d in sim.delivered] == [("data_sm", "receipt", 0)]


def test_data_sm_refused_with_generic_nack_is_redelivered(smsc_factory, bind):
    """An ESME that does not know data_sm answers generic_nack: the receipt is not lost, it comes again."""
    sim = smsc_factory(data_sm_receipts=1.0, redeliver_delay=0.05)
    client = bind(sim)
    submit(client)
    read_until(client, "submit_sm_resp")
    first = read_until(client, "data_sm", ack=False)
    nack = smpplib.smpp.make_pdu("generic_nack", client=client, status=consts.SMPP_ESME_RINVCMDID)
    nack.sequence = first.sequence
    client.send_pdu(nack)
    second = read_until(client, "data_sm", ack=False)
    assert second.message_payload == first.message_payload
    assert sim.deliver_nacked == 1
    assert [d.attempt for d in sim.delivered] == [1, 2]


def test_some_receipts_as_data_sm(smsc_factory, bind):
    sim = smsc_factory(data_sm_receipts=0.5, seed=3)
    client = bind(sim)
    for i in range(20):
        submit(client, text=f"m{i}".encode())
    seen = []
    while len([p for p in seen if p.command in ("deliver_sm", "data_sm")]) < 20:
        pdu = client.read_pdu()
        seen.append(pdu)
        if pdu.command in ("deliver_sm", "data_sm"):
            answer(client, pdu)
    commands = {p.command for p in seen if p.command != "submit_sm_resp"}
    assert commands == {"deliver_sm", "data_sm"}


@pytest.mark.parametrize("how", ["option", "argument"])
def test_mo_as_data_sm_r_dlv_5(smsc_factory, bind, how):
    sim = smsc_factory(mo_as_data_sm=how == "option")
    client = bind(sim, "receiver")
    kwargs = {} if how == "option" else {"as_data_sm": True}
    assert sim.inject_mo("8613900000001", "10690001", "TD 退订", **kwargs)
    mo = read_until(client, "data_sm", ack=False)
    assert (mo.source_addr, mo.destination_addr) == (b"8613900000001", b"10690001")
    assert decode_text(mo.message_payload, mo.data_coding) == "TD 退订"
    answer(client, mo)
    assert wait_for(lambda: sim.deliver_acked == 1)


# -- 6. concatenated MO -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("concat", "reference"), [("udh8", 200), ("udh16", 0x1234), ("sar", 0xBEEF)], ids=["udh8", "udh16", "sar"]
)
def test_concatenated_mo_parts_out_of_order_r_dlv_5(smsc_factory, bind, concat, reference):
    sim = smsc_factory()
    client = bind(sim, "receiver")
    assert sim.inject_mo(
        "8613900000001", "10690001", "STOP", concat=concat, parts=2, order="reverse", reference=reference
    )
    parts = [read_until(client, "deliver_sm") for _ in range(2)]
    got = []
    for pdu in parts:
        if concat == "sar":
            assert pdu.esm_class == 0
            info, payload = (pdu.sar_msg_ref_num, pdu.sar_total_segments, pdu.sar_segment_seqnum), pdu.short_message
        else:
            assert pdu.esm_class == 0x40
            info, payload = parse_udh(pdu.short_message)
        got.append((info, decode_text(payload, pdu.data_coding)))
    assert got == [((reference, 2, 2), "OP"), ((reference, 2, 1), "ST")]
    buffer = ConcatBuffer()
    assert buffer.add("k", got[0][0], got[0][1]) is None
    assert buffer.add("k", got[1][0], got[1][1]) == "STOP"


def test_long_ucs2_mo_split_by_length_as_data_sm_with_udh(smsc_factory, bind):
    sim = smsc_factory()
    client = bind(sim, "receiver")
    text = "退订" * 40  # 80 UCS-2 characters: two parts of at most 67
    sim.inject_mo("8613900000001", "10690001", text, concat="udh8", as_data_sm=True, order=[2, 1])
    parts = [read_until(client, "data_sm") for _ in range(2)]
    decoded = {}
    for pdu in parts:
        (ref, total, seq), payload = parse_udh(pdu.message_payload)
        assert (total, pdu.esm_class) == (2, 0x40)
        decoded[seq] = decode_text(payload, pdu.data_coding)
    assert list(decoded) == [2, 1]
    assert decoded[1] + decoded[2] == text


def test_mo_concat_kind_is_checked(smsc):
    with pytest.raises(ValueError, match="concat"):
        smsc.inject_mo("8613900000001", "10690001", "x", concat="udh7")


# -- 7. MO to the bare source address ------------------------------------------------------------------------


def test_reply_to_the_bare_access_code_goes_to_the_account_that_sent_r_dlv_5(smsc_factory, bind):
    sim = smsc_factory(credentials={SYSTEM_ID: PASSWORD, "other": "pw"}, access_codes={"1069", "10690001"})
    other = bind(sim, system_id="other", password="pw")
    client = bind(sim)
    submit(client, source="106900011234", destination="8613900000009", registered_delivery=0)
    read_until(client, "submit_sm_resp")
    assert sim.reply_mo("+8613900000009", "STOP", bare=True)
    mo = read_until(client, "deliver_sm")
    assert (mo.source_addr, mo.destination_addr, mo.short_message) == (b"8613900000009", b"10690001", b"STOP")
    sim.reply_mo("8613900000009", "again")  # not bare: to the full address with the extension
    assert read_until(client, "deliver_sm").destination_addr == b"106900011234"
    assert quiet(other, 0.1)  # the other account got nothing


def test_reply_mo_needs_a_sent_message_and_a_matching_access_code(smsc_factory, bind):
    sim = smsc_factory(access_codes={"999"})
    with pytest.raises(ValueError, match="nothing was sent"):
        sim.reply_mo("8613900000009", "x")
    client = bind(sim)
    submit(client, source="106900011234", destination="8613900000009", registered_delivery=0)
    read_until(client, "submit_sm_resp")
    with pytest.raises(ValueError, match="access code"):
        sim.reply_mo("8613900000009", "x", bare=True)


# -- 11. per-second counters and accepted parts ---------------------------------------------------------------


def test_submits_are_counted_per_second_per_account_r_bil_8(smsc_factory, bind):
    sim = smsc_factory(credentials={SYSTEM_ID: PASSWORD, "other": "pw"}, throttle_every=5)
    a = bind(sim)
    b = bind(sim, system_id="other", password="pw")
    start = int(time.time())
    for i in range(10):
        submit(a, text=f"a{i}".encode(), registered_delivery=0)
    for i in range(4):
        submit(b, text=f"b{i}".encode(), registered_delivery=0)
    for client, n in ((a, 10), (b, 4)):
        for _ in range(n):
            read_until(client, "submit_sm_resp")
    mine, theirs, both = sim.submits_per_second(SYSTEM_ID), sim.submits_per_second("other"), sim.submits_per_second()
    assert sum(mine.values()) == 10  # throttled submits count too: they reached the SMSC
    assert sum(theirs.values()) == 4
    assert sum(both.values()) == 14
    assert all(start <= second <= int(time.time()) for second in both)
    assert len(sim.accepted_parts(SYSTEM_ID)) + len(sim.accepted_parts("other")) == len(sim.submitted) == 14 - 2


def test_duplicate_parts_lists_a_part_accepted_twice_r_bil_2(smsc_factory, bind):
    sim = smsc_factory()
    client = bind(sim)
    for udh in ((5, 2, 1), (5, 2, 2), (5, 2, 2)):
        submit(client, text=b"part", udh=udh, registered_delivery=0)
        read_until(client, "submit_sm_resp")
    assert sim.duplicate_parts() == {("8613800000001", (5, 2, 2), "part"): 2}
    assert [p[2] for p in sim.accepted_parts()] == [(5, 2, 1), (5, 2, 2), (5, 2, 2)]
    stats = sim.stats()
    assert (stats["accepted"], stats["duplicate_parts"]) == (3, 1)


def test_sar_tlv_submits_are_recorded_with_their_reference(smsc_factory, bind):
    sim = smsc_factory()
    client = bind(sim)
    submit(client, text=b"one", registered_delivery=0, sar_msg_ref_num=300, sar_total_segments=2, sar_segment_seqnum=1)
    read_until(client, "submit_sm_resp")
    assert sim.submitted[0].udh == (300, 2, 1)
