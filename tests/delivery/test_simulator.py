"""The SMSC simulator itself, driven by a plain smpplib client (R-DLV-3, R-DLV-4 test tooling)."""

import json
import socket
import time
from collections import Counter

import pytest
import smpplib.client
from smpplib import consts, exceptions

from delivery.smpp.codec import concat_udh
from delivery.smpp.receipts import parse_receipt
from tests.delivery.conftest import PASSWORD, SYSTEM_ID


@pytest.fixture
def raw_client():
    """raw_client(sim, bind="transceiver") -> a bound plain smpplib Client."""
    clients = []

    def make(sim, bind="transceiver", password=PASSWORD):
        client = smpplib.client.Client("127.0.0.1", sim.port, timeout=5, allow_unknown_opt_params=True)
        client.connect()
        client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        clients.append(client)
        getattr(client, f"bind_{bind}")(system_id=SYSTEM_ID, password=password)
        return client

    yield make
    for client in clients:
        if client._socket is not None:
            client._socket.close()
            client._socket = None


def submit(client, destination="8613800000001", text=b"hi", **kwargs):
    kwargs.setdefault("registered_delivery", 1)
    pdu = client.send_message(source_addr="10690001", destination_addr=destination, short_message=text, **kwargs)
    return pdu.sequence


def read(client, command, timeout=5.0):
    """Read PDUs until one with `command` arrives (acking deliver_sm on the way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pdu = client.read_pdu()
        if pdu.command == command:
            return pdu
        if pdu.command == "deliver_sm":
            resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=client)
            resp.sequence = pdu.sequence
            client.send_pdu(resp)
    raise AssertionError(f"no {command} within {timeout}s")


def ack(client, pdu, status=0):
    resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=client, status=status)
    resp.sequence = pdu.sequence
    client.send_pdu(resp)


def test_bad_password_gets_bind_fail(smsc, raw_client):
    with pytest.raises(exceptions.PDUError) as excinfo:
        raw_client(smsc, password="nope")
    assert excinfo.value.args[1] == consts.SMPP_ESME_RBINDFAIL
    assert smsc.bind_failures == 1


@pytest.mark.parametrize("bind", ["transmitter", "receiver", "transceiver"])
def test_all_bind_types_accepted(smsc, raw_client, bind):
    client = raw_client(smsc, bind=bind)
    assert client.state != consts.SMPP_CLIENT_STATE_OPEN
    assert smsc.binds == 1


def test_receiver_bind_cannot_submit(smsc, raw_client):
    client = raw_client(smsc, bind="receiver")
    client.state = consts.SMPP_CLIENT_STATE_BOUND_TRX  # let smpplib send it anyway
    seq = submit(client)
    resp = read(client, "submit_sm_resp")
    assert resp.sequence == seq
    assert resp.status == consts.SMPP_ESME_RINVBNDSTS


def test_submit_resp_ids_unique_hex_then_decimal(smsc_factory, raw_client):
    sim = smsc_factory(first_message_id=255)
    client = raw_client(sim)
    ids = []
    for _ in range(3):
        seq = submit(client, text=b"x", registered_delivery=0)
        resp = read(client, "submit_sm_resp")
        assert resp.sequence == seq
        ids.append(resp.message_id.decode())
    assert ids == ["00000000FF", "0000000100", "0000000101"]
    dec = smsc_factory(submit_id_format="dec", first_message_id=255)
    client2 = raw_client(dec)
    submit(client2, registered_delivery=0)
    assert read(client2, "submit_sm_resp").message_id == b"0000000255"


def test_receipt_per_part_and_submit_records(smsc, raw_client):
    client = raw_client(smsc)
    for seq in (1, 2):
        submit(client, text=concat_udh(9, 2, seq) + f"part{seq}".encode(), esm_class=0x40)
    pdus = [client.read_pdu() for _ in range(4)]
    assert Counter(p.command for p in pdus) == {"submit_sm_resp": 2, "deliver_sm": 2}
    receipts = [p for p in pdus if p.command == "deliver_sm"]
    assert all(r.esm_class == 0x04 for r in receipts)
    assert [r.udh for r in smsc.submitted] == [(9, 2, 1), (9, 2, 2)]
    assert smsc.messages() == [("8613800000001", "part1part2")]
    assert smsc.receipts_sent == 2
    parsed = [parse_receipt(short_message=r.short_message) for r in receipts]
    assert {p.message_id for p in parsed} == {r.message_id.lower().lstrip("0") for r in smsc.submitted}


def test_outcome_ratios_follow_weights(smsc_factory, raw_client):
    sim = smsc_factory(outcomes={"DELIVRD": 0.5, "UNDELIV": 0.3, "EXPIRED": 0.2}, seed=7)
    client = raw_client(sim)
    stats = Counter()
    for _ in range(200):
        submit(client)
        read(client, "submit_sm_resp")
        receipt = read(client, "deliver_sm")
        ack(client, receipt)
        stats[parse_receipt(short_message=receipt.short_message).stat] += 1
    assert set(stats) == {"DELIVRD", "UNDELIV", "EXPIRED"}
    assert 60 <= stats["DELIVRD"] <= 140


def test_duplicate_receipts(smsc_factory, raw_client):
    sim = smsc_factory(duplicate_receipts=1.0)
    client = raw_client(sim)
    submit(client)
    read(client, "submit_sm_resp")
    first, second = read(client, "deliver_sm"), read(client, "deliver_sm")
    assert first.short_message == second.short_message
    assert sim.receipts_sent == 2


def test_throttle_every_nth_submit(smsc_factory, raw_client):
    sim = smsc_factory(throttle_every=3)
    client = raw_client(sim)
    statuses = []
    for _ in range(9):
        submit(client, registered_delivery=0)
        statuses.append(read(client, "submit_sm_resp").status)
    assert statuses.count(consts.SMPP_ESME_RTHROTTLED) == 3
    assert statuses[2] == consts.SMPP_ESME_RTHROTTLED
    assert len(sim.submitted) == 6


def test_tps_cap_throttles_bursts(smsc_factory, raw_client):
    sim = smsc_factory(tps_cap=10)
    client = raw_client(sim)
    for _ in range(20):
        submit(client, registered_delivery=0)
    statuses = [read(client, "submit_sm_resp").status for _ in range(20)]
    assert statuses.count(consts.SMPP_ESME_RTHROTTLED) >= 15  # burst is 1 token at 10/s
    assert sim.throttled == statuses.count(consts.SMPP_ESME_RTHROTTLED)


def test_disconnect_every_nth_submit_leaves_it_unanswered(smsc_factory, raw_client):
    sim = smsc_factory(disconnect_every=3)
    client = raw_client(sim)
    for _ in range(3):
        submit(client, registered_delivery=0)
    assert read(client, "submit_sm_resp").status == 0
    assert read(client, "submit_sm_resp").status == 0
    with pytest.raises(exceptions.ConnectionError):
        client.read_pdu()  # clean EOF after the two answers
    assert len(sim.submitted) == 2
    assert sim.disconnects == 1


def test_disconnect_after_seconds(smsc_factory, raw_client):
    sim = smsc_factory(disconnect_after=0.1)
    client = raw_client(sim)
    with pytest.raises(exceptions.ConnectionError):
        client.read_pdu()
    assert sim.disconnects == 1


def test_enquire_link_and_unbind_answered(smsc, raw_client):
    client = raw_client(smsc)
    pdu = smpplib.smpp.make_pdu("enquire_link", client=client)
    client.send_pdu(pdu)
    assert read(client, "enquire_link_resp").sequence == pdu.sequence
    assert client.unbind().command == "unbind_resp"
    assert smsc.enquire_links == 1


def test_unsupported_command_gets_generic_nack(smsc, raw_client):
    smsc.query_sm_supported = False  # issue 21: query_sm is answered now unless switched off
    client = raw_client(smsc)
    client.query_message(message_id="1", source_addr="10690001")
    nack = read(client, "generic_nack")
    assert nack.status == consts.SMPP_ESME_RINVCMDID


def test_unacked_mo_is_redelivered_on_next_bind(smsc, raw_client):
    first = raw_client(smsc, bind="receiver")
    assert smsc.inject_mo("8613900000001", "10690001", "hello")
    assert read(first, "deliver_sm").short_message == b"hello"
    first._socket.close()  # never answered
    first._socket = None
    time.sleep(0.05)
    second = raw_client(smsc, bind="receiver")
    again = read(second, "deliver_sm")
    assert again.short_message == b"hello"
    ack(second, again)
    deadline = time.monotonic() + 2
    while smsc.deliver_acked < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(d.kind, d.status) for d in smsc.delivered] == [("mo", None), ("mo", 0)]


def test_unacked_mo_of_a_dropped_bind_goes_to_a_bind_already_up(smsc, raw_client):
    """R-DLV-4: a deliver_sm left unanswered by a bind that died reaches the account's other bind
    (e.g. the listener) without waiting for a new bind (kill-at-scale stranded one otherwise)."""
    first = raw_client(smsc, bind="receiver")
    assert smsc.inject_mo("8613900000003", "10690001", "kept")
    assert read(first, "deliver_sm").short_message == b"kept"
    second = raw_client(smsc, bind="receiver")  # bound before the first dies
    first._socket.close()  # never answered
    first._socket = None
    again = read(second, "deliver_sm")
    assert again.short_message == b"kept"


def test_mo_without_receiver_is_queued_for_next_bind(smsc, raw_client):
    assert smsc.inject_mo("8613900000002", "10690001", "later") is False
    client = raw_client(smsc, bind="transceiver")
    assert read(client, "deliver_sm").short_message == b"later"


def test_management_command_runs_the_simulator(tmp_path):
    """`manage.py smsc_simulator` serves binds and submits until interrupted."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from delivery.smpp.session import SmppSession
    from tests.delivery.conftest import free_port, poll_until

    root = Path(__file__).resolve().parents[2]
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(root / "manage.py"),
            "smsc_simulator",
            "--port",
            str(port),
            "--system-id",
            "cmd",
            "--password",
            "pw",
            "--receipt-delay",
            "0",
            "--stats-every",
            "0",
            "--stats-json",
            str(tmp_path / "stats.json"),
            "--max-binds",
            "1",
        ],
        cwd=root,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in proc.stdout:
            if "listening" in line:
                break
        results, inbound = [], []
        session = SmppSession(
            host="127.0.0.1",
            port=port,
            system_id="cmd",
            password="pw",
            on_result=results.append,
            on_inbound=inbound.append,
        )
        session.connect()
        session.submit(ref="c", source="10690001", destination="+8613800000001", text="via manage.py")
        session.drain(5)
        assert poll_until(session, lambda: inbound)
        session.close()
        assert results[0].ok
        assert inbound[0].receipt.message_id == results[0].message_id
        raw = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
        raw.connect()
        deadline = time.monotonic() + 3
        while True:  # the session's bind slot (--max-binds 1) frees once the simulator saw it close
            try:
                raw.bind_transceiver(system_id="cmd", password="pw")
                break
            except exceptions.PDUError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        proc.send_signal(signal.SIGUSR2)  # runtime switch: the SMSC unbinds every bind
        assert read(raw, "unbind").command == "unbind"
        raw._socket.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    stats = json.loads((tmp_path / "stats.json").read_text())  # written at exit
    assert stats["accepted"] == 1
    assert sum(stats["submits_per_second"]["cmd"].values()) == 1
    assert stats["peak_binds"] == {"cmd": 1}


def test_management_command_help_and_options_cover_every_switch():
    """Each carrier switch is a documented flag mapped onto the simulator (issue 10 item 9, issue 20 item 7)."""
    from delivery.management.commands.smsc_simulator import Command, build_simulator

    parser = Command().create_parser("manage.py", "smsc_simulator")
    text = parser.format_help()
    flags = (
        "--throttle-parts --throttle-part-times --window-limit --drop-after-accept-every --drop-after-accept-part "
        "--drop-after-accept-times --receipt-timezone --submit-id-format --receipt-id-format --receipt-tlvs "
        "--data-sm-receipts --mo-as-data-sm --access-codes --max-binds --bind-limit --hang-at-submit "
        "--hang-seconds --unbind-at-submit --unbind-drop-responses --unbind-timeout --stats-json"
    ).split()
    assert [f for f in flags if f not in text] == []
    opts = vars(
        parser.parse_args(
            "--throttle-parts 2,3 --window-limit 10 --drop-after-accept-every 5 --drop-after-accept-part 1 "
            "--drop-after-accept-times 1 --receipt-timezone Asia/Shanghai --submit-id-format hex_lower "
            "--receipt-id-format dec_plain --data-sm-receipts 0.3 --mo-as-data-sm --access-codes 10690001 "
            "--max-binds 2 --bind-limit other:1 --hang-at-submit 50 --hang-seconds 60 --unbind-at-submit 80 "
            "--unbind-drop-responses --unbind-timeout 2".split()
        )
    )
    sim = build_simulator(opts)
    assert (sim.throttle_parts, sim.window_limit, sim.max_binds, sim.bind_limits) == ({2, 3}, 10, 2, {"other": 1})
    assert (sim.drop_after_accept_every, sim.drop_after_accept_part, sim.drop_after_accept_times) == (5, 1, 1)
    assert (sim.receipt_timezone, sim.submit_id_format, sim.receipt_id_format) == (
        "Asia/Shanghai",
        "hex_lower",
        "dec_plain",
    )
    assert (sim.data_sm_receipts, sim.mo_as_data_sm, sim.access_codes) == (0.3, True, {"10690001"})
    assert (sim.hang_at_submit, sim.hang_seconds, sim.unbind_at_submit) == (50, 60.0, 80)
    assert (sim.unbind_flush_responses, sim.unbind_timeout) == (False, 2.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [("--receipt-timezone Mars/Base", "Mars/Base"), ("--bind-limit other", "--bind-limit expects")],
)
def test_management_command_rejects_bad_options(args, message):
    from django.core.management.base import CommandError

    from delivery.management.commands.smsc_simulator import Command, build_simulator

    opts = vars(Command().create_parser("manage.py", "smsc_simulator").parse_args(args.split()))
    with pytest.raises(CommandError, match=message):
        build_simulator(opts)


def test_a_receipt_due_on_a_closing_bind_goes_to_the_accounts_other_bind(smsc_factory, raw_client):
    """Issue 16 (scale-out, worker SIGKILL): a receipt fell due on the bind of a worker just
    killed, while the SMSC's side of it was closing (peer gone, connection_lost not run yet). It
    was parked for the account's *next* bind although the listener was bound, so it never came
    and its message, without that evidence, was sent twice. A receipt goes to a bind that can take
    it now; the closing state is forced here, it lasts only a moment on a busy SMSC."""
    sim = smsc_factory(receipt_delay=0.3)
    worker = raw_client(sim)
    listener = raw_client(sim, bind="receiver")
    closing = next(c for c in list(sim._connections) if c.can_transmit)
    submit(worker, destination="8613800000077")
    read(worker, "submit_sm_resp")
    closing.transport.is_closing = lambda: True  # the peer is gone; connection_lost comes later
    receipt = read(listener, "deliver_sm")
    assert parse_receipt(short_message=receipt.short_message).stat == "DELIVRD"
    assert receipt.source_addr.decode() == "8613800000077"
