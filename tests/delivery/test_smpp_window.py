"""Issue 20 item 5 (R-DLV-3): the window follows the carrier. The configured window is a ceiling;
0x14 (queue full) and 0x58 (throttled) halve the effective window, which grows back by one step
at a time; a refused part is sent again by the session itself (the SMSC did not take it), so it
never reaches the caller as a refusal and never uses a message attempt. Real simulator sockets."""

import time
from collections import Counter

from smpplib import consts

from .conftest import poll_until


def _messages(prefix: str, count: int) -> dict:
    return {f"{prefix}{i}": (f"+8613900{i:06d}", f"{prefix} window {i}") for i in range(count)}


def test_window_10_carrier_0x14_halves_the_window_and_it_recovers_r_dlv_3(smsc_factory, session_factory, recorder):
    """The acceptance SMSC: window 10 (an 11th outstanding submit gets 0x14). Configured 20, the
    session is cut to 10 (one cut per round trip, not one per refusal), every part is accepted
    exactly once without a refusal reported, and the window recovers to 20 step by step."""
    sim = smsc_factory(window_limit=10, response_delay=0.15)
    windows = []
    session = session_factory(
        sim, window=20, window_hold=0.3, window_recover_every=0.05, throttle_backoff=0.01, on_window=windows.append
    )
    messages = _messages("w", 60)
    for ref, (destination, text) in messages.items():
        session.submit(ref=ref, source="10690001", destination=destination, text=text)
    session.drain(20)

    assert sim.window_refusals > 0
    assert session.stats["window_cuts"] >= 1
    # halved from 20 to 10 by the first burst (one signal, not one cut per 0x14); probing above
    # the carrier's 10 while it recovers may cost one more halving, never a collapse to 1
    assert windows[0] == 10
    assert min(windows) >= 5
    assert sim.max_outstanding <= 10 + 1
    assert {r.ref for r in recorder.results} == set(messages)
    assert all(r.ok for r in recorder.results), [r for r in recorder.results if not r.ok]
    assert len(recorder.results) == len(messages)  # exactly one result per part
    assert session.stats["throttle_resends"] == sim.window_refusals
    accepted = Counter(r.destination for r in sim.submitted)
    assert set(accepted.values()) == {1}
    assert len(accepted) == len(messages)

    assert poll_until(session, lambda: session.effective_window == 20, timeout=5)
    assert windows[-1] == 20
    assert all(b - a <= 1 for a, b in zip(windows, windows[1:], strict=False))  # it grows one step at a time


def test_0x58_halves_the_window_too_r_dlv_3(smsc_factory, session_factory, recorder):
    sim = smsc_factory(throttle_every=7)
    session = session_factory(sim, window=16, window_hold=10, throttle_backoff=0.005)
    for ref, (destination, text) in _messages("t", 30).items():
        session.submit(ref=ref, source="10690001", destination=destination, text=text)
    session.drain(10)
    assert sim.throttled >= 3
    assert session.effective_window < 16
    assert all(r.ok for r in recorder.results)
    assert len(recorder.results) == 30
    assert set(Counter(r.destination for r in sim.submitted).values()) == {1}


def test_a_part_throttled_every_time_is_reported_after_its_resends_r_dlv_3(smsc_factory, session_factory, recorder):
    """The session's own resends are bounded: then the caller gets the transient refusal (the
    sender waits for the channel; failure reason `throttled`)."""
    sim = smsc_factory(throttle_every=1)
    session = session_factory(sim, window=4, throttle_resends=2, throttle_backoff=0.005)
    session.submit(ref="x", source="10690001", destination="+8613900000001", text="always throttled")
    session.drain(5)
    [result] = recorder.results
    assert result.command_status == consts.SMPP_ESME_RTHROTTLED
    assert result.transient
    assert sim.throttled == 3  # the first send and two resends
    assert session.outstanding == 0


def test_throttled_part_waiting_for_its_resend_is_not_sent_after_a_disconnect_r_dlv_3(
    smsc_factory, session_factory, recorder
):
    """A refused part still waiting for its resend when the link drops was never taken: reported
    `not_sent` (safe to send again), not `link_lost` (which would wait for evidence)."""
    from delivery.smpp.results import STATUS_NOT_SENT, SmppDisconnected

    sim = smsc_factory(throttle_every=1)
    session = session_factory(sim, window=4, throttle_backoff=2.0, throttle_backoff_max=2.0)
    session.submit(ref="y", source="10690001", destination="+8613900000002", text="refused then dropped")
    poll_until(session, lambda: session.stats["throttled"] == 1, timeout=3)
    assert session.outstanding == 1  # waiting for its resend
    sim.drop_connections()
    deadline = time.monotonic() + 5
    try:
        while session.connected and time.monotonic() < deadline:
            session.poll(0.05)
    except SmppDisconnected:
        pass
    [result] = recorder.results
    assert result.command_status == STATUS_NOT_SENT
    assert not result.outcome_unknown


def _long_text(parts: int) -> str:
    return "".join(f"part{i} ".ljust(153, str(i)) for i in range(1, parts + 1))


def _accepted_order(sim, destination: str) -> list[int]:
    return [r.udh[2] for r in sim.submitted if r.destination == destination.lstrip("+")]


def test_a_part_resent_after_0x58_is_not_overtaken_by_later_parts_r_dlv_3(smsc_factory, session_factory, recorder):
    """Issue 20 (R-DLV-3): unknown-submission reconciliation proves doubtful parts in send order,
    so a part refused 0x58 and sent again must keep its place: the parts of that message not yet
    sent when the refusal came wait until it is accepted, and the resend itself waits for the
    answers of the later parts already in flight (they can never be doubtful together with it)."""
    delay = 0.1
    sim = smsc_factory(throttle_parts={1}, throttle_part_times=1, response_delay=delay)
    session = session_factory(sim, window=2, throttle_backoff=0.005, window_hold=10)
    destination = "+8613900000101"
    assert session.submit(ref="m", source="10690001", destination=destination, text=_long_text(4)) == 4
    session.drain(10)

    assert sim.parts_throttled == 1
    assert sorted((r.part, r.ok) for r in recorder.results) == [(1, True), (2, True), (3, True), (4, True)]
    order = _accepted_order(sim, destination)
    assert sorted(order) == [1, 2, 3, 4]  # each part accepted exactly once
    assert order.index(1) < order.index(3) < order.index(4)  # nothing sent after the refusal overtook it
    records = {r.udh[2]: r for r in sim.submitted if r.destination == destination.lstrip("+")}
    for part in order[: order.index(1)]:  # in flight before the refusal was known: answered first
        assert records[1].received_at >= records[part].received_at + delay


def test_a_part_resent_after_0x14_is_not_overtaken_by_later_parts_r_dlv_3(smsc_factory, session_factory, recorder):
    """Issue 20 (R-DLV-3): the carrier's window (0x14) refuses part 2 while part 1 is queued; part
    3 is not sent before part 2 is accepted, so the SMSC takes the parts in part order."""
    sim = smsc_factory(window_limit=1, response_delay=0.1)
    session = session_factory(sim, window=2, throttle_backoff=0.005, window_hold=10)
    destination = "+8613900000102"
    assert session.submit(ref="q", source="10690001", destination=destination, text=_long_text(3)) == 3
    session.drain(10)

    assert sim.window_refusals >= 1
    assert all(r.ok for r in recorder.results)
    assert sorted(r.part for r in recorder.results) == [1, 2, 3]
    assert _accepted_order(sim, destination) == [1, 2, 3]
