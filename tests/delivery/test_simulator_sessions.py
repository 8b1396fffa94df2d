"""Session-contract behaviours of the SMSC simulator (issue 20 item 7): a bind limit per account, a hang
with TCP left open, an SMSC-initiated unbind with submits in flight. Proven with a plain smpplib
client on a real loopback socket; the delivery tests (R-DLV-3) run the platform against them."""

import time

import pytest
import smpplib.client
from smpplib import consts, exceptions

from tests.delivery.conftest import PASSWORD, SYSTEM_ID
from tests.delivery.test_simulator_carrier import (
    answer,
    bind_fixture,  # noqa: F401 - the `bind` fixture
    quiet,
    read_until,
    submit,
    wait_for,
)

# -- 8. bind limit per account -----------------------------------------------------------------------------


def test_bind_beyond_the_account_limit_gets_bind_fail_r_dlv_3(smsc_factory, bind):
    sim = smsc_factory(max_binds=2)
    bind(sim, "transmitter")
    receiver = bind(sim, "receiver")
    with pytest.raises(exceptions.PDUError) as excinfo:
        bind(sim, "transceiver")  # every bind type counts
    assert excinfo.value.args[1] == consts.SMPP_ESME_RBINDFAIL
    assert (sim.bind_limit_refusals, sim.bind_failures, sim.peak_binds) == (1, 1, {SYSTEM_ID: 2})

    receiver.unbind()  # a slot frees when a bind ends
    receiver._socket.close()
    receiver._socket = None
    assert wait_for(lambda: sim.active_binds(SYSTEM_ID) == 1)
    bind(sim, "transceiver")
    assert sim.peak_binds == {SYSTEM_ID: 2}


def test_bind_limits_per_account_override_the_default(smsc_factory, bind):
    sim = smsc_factory(credentials={SYSTEM_ID: PASSWORD, "solo": "pw"}, max_binds=3, bind_limits={"solo": 1})
    bind(sim, system_id="solo", password="pw")
    with pytest.raises(exceptions.PDUError):
        bind(sim, "receiver", system_id="solo", password="pw")
    for _ in range(3):  # the other account keeps its own budget
        bind(sim)
    assert sim.bind_limit_refusals == 1


def test_a_refused_bind_leaves_the_link_open_for_a_retry(smsc_factory, bind):
    sim = smsc_factory(max_binds=1)
    first = bind(sim)
    client = smpplib.client.Client("127.0.0.1", sim.port, timeout=5, allow_unknown_opt_params=True)
    client.connect()
    try:
        with pytest.raises(exceptions.PDUError):
            client.bind_transmitter(system_id=SYSTEM_ID, password=PASSWORD)
        first.unbind()
        assert wait_for(lambda: sim.active_binds(SYSTEM_ID) == 0)
        client.bind_transmitter(system_id=SYSTEM_ID, password=PASSWORD)  # same socket, now accepted
    finally:
        client._socket.close()


# -- 9. hang with TCP left open --------------------------------------------------------------------------------


def test_hang_answers_nothing_then_catches_up_r_dlv_3(smsc_factory, bind):
    sim = smsc_factory()
    client = bind(sim)
    assert sim.hang(0.5) == 1
    started = time.monotonic()
    link = smpplib.smpp.make_pdu("enquire_link", client=client)
    client.send_pdu(link)
    sequence = submit(client)
    assert quiet(client, 0.3)  # neither enquire_link_resp nor submit_sm_resp, and no EOF
    assert sim.submitted == []  # not processed yet
    assert read_until(client, "enquire_link_resp").sequence == link.sequence
    resp = read_until(client, "submit_sm_resp")
    assert (resp.sequence, resp.status) == (sequence, 0)
    assert time.monotonic() - started >= 0.45
    read_until(client, "deliver_sm")  # receipts flow again
    assert sim.hangs == 1
    assert sim.disconnects == 0


def test_hang_at_the_nth_submit_holds_that_submit_too(smsc_factory, bind):
    sim = smsc_factory(hang_at_submit=2, hang_seconds=0.4)
    client = bind(sim)
    submit(client, text=b"one", registered_delivery=0)
    assert read_until(client, "submit_sm_resp").status == 0
    started = time.monotonic()
    submit(client, text=b"two", registered_delivery=0)
    submit(client, text=b"three", registered_delivery=0)
    assert quiet(client, 0.2)
    statuses = [read_until(client, "submit_sm_resp").status for _ in range(2)]
    assert statuses == [0, 0]
    assert time.monotonic() - started >= 0.35
    assert [r.text for r in sim.submitted] == ["one", "two", "three"]


def test_hang_also_holds_receipts_and_new_binds(smsc_factory, bind):
    sim = smsc_factory(receipt_delay=0.1)
    client = bind(sim)
    submit(client)
    read_until(client, "submit_sm_resp")
    sim.hang(0.5)  # the receipt falls due during the hang
    assert quiet(client, 0.3)
    started = time.monotonic()
    late = bind(sim, "transmitter")  # a new link to a hung SMSC waits for its bind_resp too
    assert time.monotonic() - started >= 0.1
    assert late.state == consts.SMPP_CLIENT_STATE_BOUND_TX
    read_until(client, "deliver_sm")


def test_hang_with_discard_loses_what_arrived_but_keeps_the_link(smsc_factory, bind):
    sim = smsc_factory()
    client = bind(sim)
    sim.hang(0.3, discard=True)
    submit(client, text=b"lost", registered_delivery=0)
    assert quiet(client, 0.5)
    assert sim.discarded_during_hang == 1
    assert sim.submitted == []
    submit(client, text=b"after", registered_delivery=0)
    assert read_until(client, "submit_sm_resp").status == 0
    assert [r.text for r in sim.submitted] == ["after"]


# -- 10. SMSC-initiated unbind with submits in flight -------------------------------------------------------


def test_smsc_unbind_still_answers_submits_already_received_r_dlv_3(smsc_factory, bind):
    sim = smsc_factory(response_delay=0.3)
    client = bind(sim)
    sequences = [submit(client, text=f"u{i}".encode(), registered_delivery=0) for i in range(3)]
    assert wait_for(lambda: sim.submits_received == 3)
    assert sim.unbind() == 1
    unbind = read_until(client, "unbind")
    late = submit(client, text=b"late", registered_delivery=0)  # after the SMSC asked to unbind
    refused = read_until(client, "submit_sm_resp")
    assert (refused.sequence, refused.status) == (late, consts.SMPP_ESME_RINVBNDSTS)
    answer(client, unbind)
    answers = [read_until(client, "submit_sm_resp") for _ in range(3)]
    assert [(a.sequence, a.status) for a in answers] == [(s, 0) for s in sequences]
    with pytest.raises(exceptions.ConnectionError):
        client.read_pdu()  # closed once every owed answer was written
    assert (sim.unbinds_sent, sim.unbind_resps, sim.refused_while_unbinding) == (1, 1, 1)
    assert [r.text for r in sim.submitted] == ["u0", "u1", "u2"]
    assert sim.responses_lost == 0


def test_smsc_unbind_without_flush_forgets_answers_but_receipts_follow(smsc_factory, bind):
    sim = smsc_factory(response_delay=0.3, unbind_flush_responses=False)
    listener = bind(sim, "receiver")
    client = bind(sim, "transmitter")
    for i in range(2):
        submit(client, text=f"f{i}".encode())
    assert wait_for(lambda: sim.submits_received == 2)
    sim.unbind(SYSTEM_ID)
    unbind = read_until(listener, "unbind")  # the listener is asked to unbind too
    answer(listener, unbind)
    answer(client, read_until(client, "unbind"))
    with pytest.raises(exceptions.ConnectionError):
        client.read_pdu()  # no submit_sm_resp before EOF
    assert sim.responses_lost == 2
    fresh = bind(sim, "receiver")  # the accepted submits are still receipted
    receipts = [read_until(fresh, "deliver_sm") for _ in range(2)]
    assert {r.short_message.split(b" ")[0] for r in receipts} == {b"id:" + r.message_id.encode() for r in sim.submitted}


def test_unbind_at_the_nth_submit_and_close_without_unbind_resp(smsc_factory, bind):
    sim = smsc_factory(unbind_at_submit=2, unbind_timeout=0.3)
    client = bind(sim)
    seen = []
    for i in range(2):
        submit(client, text=f"n{i}".encode(), registered_delivery=0)
    read_until(client, "unbind", seen=seen)
    assert [(p.command, p.status) for p in seen] == [("submit_sm_resp", 0), ("submit_sm_resp", 0)]
    started = time.monotonic()
    with pytest.raises(exceptions.ConnectionError):
        client.read_pdu()  # never answered: the SMSC closes after unbind_timeout
    assert time.monotonic() - started >= 0.2
    assert sim.unbind_resps == 0
