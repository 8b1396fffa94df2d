"""SmppSession against the real SmscSimulator socket (R-DLV-3, R-DLV-4). No mocks."""

import itertools
import time
from collections import Counter

import pytest
from smpplib import consts

from delivery.simulator.server import SmscSimulator
from delivery.smpp.pacing import TokenBucket, backoff_delays
from delivery.smpp.receipts import message_id_variants
from delivery.smpp.results import STATUS_DISCONNECTED, STATUS_TIMEOUT, SmppBindError, SmppConnectError, SmppDisconnected
from tests.delivery.conftest import PASSWORD, SYSTEM_ID, free_port, poll_until, send_all


def test_round_trip_submit_response_receipt_matched_r_dlv_3_r_dlv_4(smsc_factory, session_factory, recorder):
    sim = smsc_factory(receipt_delay=0.05)
    session = session_factory(sim)
    parts = session.submit(ref="m1", source="10690001", destination="+8613800000001", text="Hello world")
    assert parts == 1
    session.drain(5)
    assert session.outstanding == 0
    [result] = recorder.results
    assert (result.ref, result.part, result.parts) == ("m1", 1, 1)
    assert result.command_status == 0
    assert not result.transient
    assert result.message_id == result.raw_message_id.lstrip("0").lower()
    assert poll_until(session, lambda: recorder.receipts)
    [receipt] = recorder.receipts
    assert receipt.message_id == result.message_id
    assert receipt.stat == "DELIVRD"
    assert receipt.status == "delivered"
    [submitted] = sim.submitted
    assert submitted.destination == "8613800000001"
    assert submitted.text == "Hello world"
    assert submitted.data_coding == 0
    assert submitted.registered_delivery == 1


def test_submits_share_tcp_writes_and_each_is_answered_once_r_dlv_3(smsc, session_factory, recorder):
    """Issue 16: submit_sm go out several to a TCP write (with the session's next read or wait),
    not one write each; every one still arrives once, in order, and is answered."""
    session = session_factory(smsc, window=50)
    for i in range(40):
        session.submit(
            ref=f"c{i}",
            source="10690001",
            destination=f"+86138000020{i:02d}",
            text="coalesced",
            registered_delivery=False,
        )
    session.drain(5)
    assert [r.ref for r in recorder.results] == [f"c{i}" for i in range(40)]
    assert all(r.ok for r in recorder.results)
    assert [r.destination for r in smsc.submitted] == [f"86138000020{i:02d}" for i in range(40)]
    assert session.stats["parts_sent"] == 40
    assert session.stats["writes"] <= 40 // 4  # batches of up to 8 submits (no receipts asked: no answers to write)


def test_long_ucs2_message_sent_as_three_udh_parts_and_reassembled_r_dlv_3(smsc, session_factory, recorder):
    text = "中" * 66 + "😀" + "文" * 64 + "🎉" + "end"  # surrogate pairs at both part boundaries
    session = session_factory(smsc)
    assert session.submit(ref="long", source="10690001", destination="+8613800000002", text=text) == 3
    session.drain(5)
    assert [(r.part, r.parts, r.ok) for r in recorder.results] == [(1, 3, True), (2, 3, True), (3, 3, True)]
    assert len({r.message_id for r in recorder.results}) == 3
    records = smsc.submitted
    assert [r.data_coding for r in records] == [8, 8, 8]
    assert all(r.esm_class & 0x40 for r in records)
    assert [r.udh[1:] for r in records] == [(3, 1), (3, 2), (3, 3)]
    assert len({r.udh[0] for r in records}) == 1
    assert smsc.messages() == [("8613800000002", text)]
    # one receipt per part
    assert poll_until(session, lambda: len(recorder.receipts) == 3)
    assert {r.message_id for r in recorder.receipts} == {r.message_id for r in recorder.results}


def test_gsm7_escape_at_part_boundary_not_split_on_the_wire_r_dlv_3(smsc, session_factory, recorder):
    text = "a" * 152 + "€" + "[b]" * 10
    session = session_factory(smsc)
    assert session.submit(ref="esc", source="SHOP", destination="+8613800000003", text=text) == 2
    session.drain(5)
    assert [r.data_coding for r in smsc.submitted] == [0, 0]
    assert smsc.submitted[0].text == "a" * 152
    assert smsc.submitted[1].text.startswith("€")
    assert smsc.messages() == [("8613800000003", text)]


def test_window_never_exceeded_and_filled_r_dlv_3(smsc_factory, session_factory, recorder):
    sim = smsc_factory(response_delay=0.05)
    session = session_factory(sim, window=4)
    for i in range(30):
        session.submit(ref=f"w{i}", source="10690001", destination=f"+86138000010{i:02d}", text="window")
        assert session.outstanding <= 4
    session.drain(5)
    assert sim.max_outstanding == 4  # pipelined up to the window, never beyond
    assert len(recorder.results) == 30
    assert all(r.ok for r in recorder.results)
    assert session.stats["window_waits"] > 0


def test_tps_limit_respected_r_dlv_3(smsc, session_factory, recorder):
    rate = 100.0
    session = session_factory(smsc, tps=rate, window=50)
    start = time.monotonic()
    for i in range(60):
        session.submit(ref=f"t{i}", source="10690001", destination=f"+86138000020{i:02d}", text="tps")
    session.drain(5)
    elapsed = time.monotonic() - start
    limiter = session.limiter
    assert limiter.granted == 60
    # the limiter's own decisions: in any interval of w seconds at most burst + rate*w grants
    grants = list(limiter.grants)
    for i, t0 in enumerate(grants):
        within = sum(1 for t in grants[i:] if t - t0 <= 0.2)
        assert within <= limiter.burst + rate * 0.2 + 1e-9
    # and loosely from the clocks: lower bounds only (a loaded machine makes things slower, never
    # faster); the SMSC saw the 60 submits spread over well above a burst (expected ~0.55 s)
    assert elapsed >= (60 - limiter.burst) / rate * 0.9
    stamps = [r.received_at for r in smsc.submitted]
    assert len(stamps) == 60
    assert stamps[-1] - stamps[0] >= 0.25


def test_token_bucket_decisions_are_pure():
    bucket = TokenBucket(10, burst=2, now=0.0)
    assert bucket.take(0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.0)
    assert bucket.wait_time(0.0) == pytest.approx(0.1)
    assert bucket.take(0.1)
    assert not bucket.take(0.15)


def test_throttling_gives_transient_results_backs_off_and_retry_succeeds_r_dlv_3(
    smsc_factory, session_factory, recorder
):
    sim = smsc_factory(throttle_every=5)
    # throttle_resends=0: every refusal is reported (the session's own resends: test_smpp_window.py)
    session = session_factory(sim, window=5, throttle_backoff=0.01, throttle_resends=0)
    messages = {f"th{i}": (f"+86138000030{i:02d}", f"throttle {i}") for i in range(20)}
    rounds = send_all(session, recorder, messages)
    assert rounds >= 2
    throttled = [r for r in recorder.results if r.command_status == consts.SMPP_ESME_RTHROTTLED]
    assert throttled
    assert all(r.transient and r.message_id is None for r in throttled)
    assert session.stats["throttled"] == len(throttled)
    assert session.stats["throttle_waits"] > 0  # it slowed down after the throttling errors
    delivered = Counter(dest for dest, _text in sim.messages())
    assert sorted(delivered) == sorted(d.lstrip("+") for d, _ in messages.values())
    assert set(delivered.values()) == {1}  # no message submitted twice


def test_permanent_error_is_not_transient_r_dlv_3(smsc_factory, session_factory, recorder):
    sim = smsc_factory(reject_destinations={"8613800000099"})
    session = session_factory(sim)
    session.submit(ref="bad", source="10690001", destination="+8613800000099", text="x")
    session.drain(5)
    [result] = recorder.results
    assert result.command_status == consts.SMPP_ESME_RINVDSTADR
    assert not result.transient


def test_disconnect_mid_stream_reports_outstanding_transient_and_reconnect_works_r_dlv_3(
    smsc_factory, session_factory, recorder
):
    sim = smsc_factory(disconnect_every=7)
    session = session_factory(sim, window=5)
    messages = {f"d{i}": (f"+86138000040{i:02d}", f"disconnect {i}") for i in range(30)}
    send_all(session, recorder, messages)
    lost = [r for r in recorder.results if r.command_status == STATUS_DISCONNECTED]
    assert lost
    assert all(r.transient for r in lost)
    assert session.stats["disconnects"] >= 3
    assert sim.binds >= 4
    delivered = Counter(dest for dest, _text in sim.messages())
    assert len(delivered) == 30
    assert set(delivered.values()) == {1}  # nothing accepted was reported lost, nothing sent twice


def test_every_part_gets_exactly_one_result_when_link_drops_mid_message_r_dlv_3(
    smsc_factory, session_factory, recorder
):
    sim = smsc_factory(disconnect_every=2, response_delay=0.05)
    session = session_factory(sim, window=10)

    def send_and_drain():
        session.submit(ref="multi", source="10690001", destination="+8613800000005", text="x" * 153 * 5)
        session.drain(5)

    with pytest.raises(SmppDisconnected):
        send_and_drain()
    assert sorted(r.part for r in recorder.results) == [1, 2, 3, 4, 5]
    assert all(r.command_status == STATUS_DISCONNECTED and r.transient for r in recorder.results)
    assert session.outstanding == 0
    assert not session.connected


def test_poll_detects_dropped_idle_connection_r_dlv_3(smsc, session_factory):
    session = session_factory(smsc)
    assert smsc.drop_connections() == 1
    with pytest.raises(SmppDisconnected):
        poll_until(session, lambda: False, timeout=2)
    assert not session.connected
    with pytest.raises(SmppDisconnected):
        session.submit(ref="x", source="1", destination="+8613800000006", text="x")


def test_is_alive_notices_a_link_closed_while_idle_r_dlv_3(smsc, session_factory):
    session = session_factory(smsc)
    assert session.is_alive()
    smsc.drop_connections()
    deadline = time.monotonic() + 2
    while session.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not session.is_alive()
    assert not session.connected


def test_connect_with_backoff_retries_until_smsc_is_up_r_dlv_3(session_factory):
    port = free_port()
    sim = SmscSimulator("127.0.0.1", port, credentials={SYSTEM_ID: PASSWORD})
    slept = []

    def sleep(delay):
        slept.append(delay)
        if len(slept) == 2:
            sim.start()

    session = session_factory(sim, connect=False)
    try:
        attempts = session.connect_with_backoff(max_attempts=5, base_delay=0.01, jitter=0.0, sleep=sleep)
        assert attempts == 3
        assert slept == [0.01, 0.02]
        assert session.connected
    finally:
        session.close()
        sim.stop()


def test_connect_with_backoff_gives_up_after_max_attempts_r_dlv_3(session_factory):
    sim = SmscSimulator("127.0.0.1", free_port())  # never started
    slept = []
    session = session_factory(sim, connect=False)
    with pytest.raises(SmppConnectError):
        session.connect_with_backoff(max_attempts=4, base_delay=0.5, max_delay=1.0, jitter=0.0, sleep=slept.append)
    assert slept == [0.5, 1.0, 1.0]


def test_backoff_delays_are_exponential_and_capped():
    assert backoff_delays(5, 1.0, max_delay=5.0) == [1.0, 2.0, 4.0, 5.0]
    assert all(1.0 <= d <= 1.1 for d in backoff_delays(2, 1.0, jitter=0.1))


def test_bad_password_gives_bind_error_and_is_not_retried_r_dlv_3(smsc, session_factory):
    session = session_factory(smsc, connect=False, password="wrong")
    slept = []
    with pytest.raises(SmppBindError) as excinfo:
        session.connect_with_backoff(max_attempts=3, base_delay=0.01, sleep=slept.append)
    assert excinfo.value.command_status == consts.SMPP_ESME_RBINDFAIL
    assert slept == []
    assert not session.connected
    assert smsc.bind_failures == 1


def test_mo_injection_reaches_on_inbound_with_decoded_text_r_dlv_5(smsc, session_factory, recorder):
    session = session_factory(smsc)
    smsc.inject_mo("+8613900000001", "10690001", "退订")
    smsc.inject_mo("8613900000002", "10690001", "STOP please {now}")
    long_text = "回复内容" * 40  # 160 UCS-2 units → message_payload
    smsc.inject_mo("8613900000003", "10690001", long_text)
    assert poll_until(session, lambda: len(recorder.mo) == 3)
    first, second, third = recorder.mo
    assert not first.is_receipt
    assert first.receipt is None
    assert first.text == "退订"
    assert first.data_coding == 8
    assert first.source_addr == "+8613900000001"
    assert first.destination_addr == "10690001"
    assert second.text == "STOP please {now}"
    assert second.data_coding == 0
    assert third.text == long_text
    assert poll_until(session, lambda: smsc.deliver_acked == 3)


def test_failing_inbound_handler_means_redelivery_r_dlv_5(smsc_factory, session_factory):
    sim = smsc_factory(redeliver_delay=0.05)
    seen = []
    failures = itertools.count()

    def on_inbound(pdu):
        seen.append(pdu.text)
        if next(failures) == 0:
            raise RuntimeError("database down")

    session = session_factory(sim, on_inbound=on_inbound)
    sim.inject_mo("8613900000004", "10690001", "T")
    assert poll_until(session, lambda: len(seen) == 2)
    assert seen == ["T", "T"]
    assert poll_until(session, lambda: sim.deliver_acked == 1)
    assert sim.deliver_nacked == 1
    assert [d.status for d in sim.delivered] == [consts.SMPP_ESME_RX_T_APPN, consts.SMPP_ESME_ROK]
    assert session.stats["inbound_errors"] == 1


def test_receipt_with_decimal_id_matches_hex_submit_id_via_variants_r_dlv_4(smsc_factory, session_factory, recorder):
    sim = smsc_factory(submit_id_format="hex", receipt_id_format="dec")
    session = session_factory(sim)
    session.submit(ref="dec", source="10690001", destination="+8613800000007", text="ids")
    session.drain(5)
    assert poll_until(session, lambda: recorder.receipts)
    [result], [receipt] = recorder.results, recorder.receipts
    assert receipt.message_id != result.message_id
    assert result.message_id in message_id_variants(receipt.message_id)


def test_receipt_tlvs_are_preferred_r_dlv_4(smsc_factory, session_factory, recorder):
    sim = smsc_factory(receipt_id_format="dec", receipt_tlvs=True, outcomes={"UNDELIV": 1.0})
    session = session_factory(sim)
    session.submit(ref="tlv", source="10690001", destination="+8613800000008", text="tlv")
    session.drain(5)
    assert poll_until(session, lambda: recorder.receipts)
    [result], [receipt] = recorder.results, recorder.receipts
    assert receipt.message_id == result.message_id  # receipted_message_id TLV, same form as submit_sm_resp
    assert receipt.status == "undelivered"


def test_receipt_before_submit_response_is_passed_through_in_order_r_dlv_4(smsc_factory, session_factory, recorder):
    sim = smsc_factory(receipt_before_response=True)
    session = session_factory(sim)
    session.submit(ref="early", source="10690001", destination="+8613800000009", text="early")
    session.drain(5)
    assert [kind for kind, _ in recorder.events] == ["inbound", "result"]
    assert recorder.events[0][1].receipt.message_id == recorder.events[1][1].message_id


def test_receipt_on_another_bind_of_the_same_account_r_dlv_4(smsc_factory, session_factory, recorder):
    from tests.delivery.conftest import Recorder

    sim = smsc_factory(receipt_on_other_bind=True)
    other = Recorder()
    session = session_factory(sim)
    second = session_factory(sim, on_result=other.on_result, on_inbound=other.on_inbound)
    session.submit(ref="o", source="10690001", destination="+8613800000010", text="other bind")
    session.drain(5)
    assert poll_until(second, lambda: other.receipts)
    assert other.receipts[0].message_id == recorder.results[0].message_id
    session.poll(0.05)
    assert recorder.receipts == []


def test_response_timeout_is_an_unknown_outcome_and_the_bind_is_not_trusted_again(
    smsc_factory, session_factory, recorder
):
    """Issue 20: a submit unanswered past the timeout may have been taken (outcome unknown, never
    a refusal), and a link that stopped answering is torn down instead of going back to the pool."""
    sim = smsc_factory(response_delay=0.5)
    session = session_factory(sim, response_timeout=0.1)
    session.submit(ref="slow", source="10690001", destination="+8613800000011", text="slow")
    with pytest.raises(SmppDisconnected):
        session.drain(2)
    [result] = recorder.results
    assert result.command_status == STATUS_TIMEOUT
    assert result.outcome_unknown
    assert not session.connected


def test_enquire_link_sent_when_idle_r_dlv_3(smsc, session_factory):
    session = session_factory(smsc, enquire_link_interval=0.05)
    poll_until(session, lambda: smsc.enquire_links >= 2, timeout=2)
    assert smsc.enquire_links >= 2
    assert session.stats["enquire_links_sent"] >= 2
    assert session.connected


def test_close_unbinds_cleanly(smsc, session_factory, recorder):
    session = session_factory(smsc)
    session.close()
    assert not session.connected
    assert session.stats["disconnects"] == 0
    assert recorder.results == []


def test_bind_password_not_logged_even_at_debug(smsc, session_factory, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    session = session_factory(smsc)
    session.submit(ref="log", source="10690001", destination="+8613800000012", text="log")
    session.drain(5)
    assert session.connected
    assert PASSWORD not in caplog.text
    assert PASSWORD.encode().hex() not in caplog.text


def test_transmitter_sender_gets_receipts_on_the_listener_bind_r_dlv_4(smsc, session_factory, recorder):
    from tests.delivery.conftest import Recorder

    listener_events = Recorder()
    listener = session_factory(
        smsc, bind="receiver", on_result=listener_events.on_result, on_inbound=listener_events.on_inbound
    )
    sender = session_factory(smsc, bind="transmitter")
    sender.submit(ref="tx", source="10690001", destination="+8613800000013", text="via listener")
    sender.drain(5)
    assert poll_until(listener, lambda: listener_events.receipts)
    assert listener_events.receipts[0].message_id == recorder.results[0].message_id
    assert recorder.inbound == []


def test_receiver_bind_refuses_to_submit(smsc, session_factory):
    from delivery.smpp.results import SmppError

    listener = session_factory(smsc, bind="receiver")
    with pytest.raises(SmppError, match="receiver"):
        listener.submit(ref="x", source="1", destination="+8613800000014", text="x")


def test_inbound_batch_handler_sees_receipts_before_they_are_answered_r_dlv_4(smsc_factory, session_factory):
    """on_inbound_batch: the deliver_sm of a window are handed over together (one INSERT in the
    sender) and answered only after the handler returned."""
    sim = smsc_factory()
    batches, acked_when_handled = [], []

    def on_inbound_batch(pdus):
        acked_when_handled.append(sim.deliver_acked)
        batches.append(pdus)

    session = session_factory(sim, window=20, on_inbound_batch=on_inbound_batch)
    for i in range(40):
        session.submit(ref=f"b{i}", source="10690001", destination=f"+86138000050{i:02d}", text="batch")
    session.drain(5)
    assert poll_until(session, lambda: sim.deliver_acked == 40)
    received = [p for batch in batches for p in batch]
    assert len(received) == 40
    assert all(p.is_receipt for p in received)
    assert len(batches) < 40  # collected, not one call per PDU
    # while a batch was being handled the SMSC had seen answers to earlier batches at most
    answered_before = 0
    for batch, acked in zip(batches, acked_when_handled, strict=True):
        assert acked <= answered_before
        answered_before += len(batch)


def test_failing_inbound_batch_is_answered_with_errors_and_redelivered_r_dlv_4(smsc_factory, session_factory):
    sim = smsc_factory(redeliver_delay=0.05)
    calls = itertools.count()
    seen = []

    def on_inbound_batch(pdus):
        seen.extend(p.text for p in pdus)
        if next(calls) == 0:
            raise RuntimeError("database down")
        return [None] * len(pdus)

    session = session_factory(sim, on_inbound_batch=on_inbound_batch)
    sim.inject_mo("8613900000005", "10690001", "T")
    assert poll_until(session, lambda: sim.deliver_acked == 1)
    assert seen == ["T", "T"]
    assert sim.deliver_nacked == 1
    assert [d.status for d in sim.delivered] == [consts.SMPP_ESME_RX_T_APPN, consts.SMPP_ESME_ROK]
