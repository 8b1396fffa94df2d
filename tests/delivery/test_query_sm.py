"""SMPP query_sm on the session and in the simulator (issue 21 item 3; R-DLV-3, R-DLV-4): the
SMSC is asked for a part's state instead of waiting for a receipt it gave up on."""

import pytest
from smpplib import consts

from delivery.smpp.results import STATUS_DISCONNECTED, STATUS_TIMEOUT
from tests.delivery.conftest import poll_until

SOURCE = "10690001"


def submit(session, recorder, text="hello", destination="8613800138000"):
    before = len(recorder.results)
    session.submit(ref=f"r{before}", source=SOURCE, destination=destination, text=text)
    session.drain(5)
    return [r for r in recorder.results[before:] if r.ok]


def test_query_answers_the_final_state_of_a_part_whose_receipt_was_lost_r_dlv_4(
    smsc_factory, session_factory, recorder
):
    sim = smsc_factory(receipt_loss=1.0, outcomes={"UNDELIV": 1.0})
    session = session_factory(sim)
    [result] = submit(session, recorder)
    assert poll_until(session, lambda: sim.receipts_lost == 1)
    [answer] = session.query([(result.raw_message_id, SOURCE)])
    assert answer.ok
    assert answer.stat == "UNDELIV"
    assert answer.final_date  # final: the SMSC says when
    assert recorder.receipts == []  # no receipt ever came


def test_query_of_a_part_still_en_route_is_not_final(smsc_factory, session_factory, recorder):
    sim = smsc_factory(receipt_delay=30)
    session = session_factory(sim)
    [result] = submit(session, recorder)
    [answer] = session.query([(result.raw_message_id, SOURCE)])
    assert answer.ok
    assert answer.stat == "ENROUTE"
    assert answer.final_date == ""


def test_query_accepts_the_stored_normalised_id(smsc_factory, session_factory, recorder):
    """We keep ids normalised (lower case, no leading zeros): the simulator, like SMSCs that
    compare numerically, finds them; others answer RQUERYFAIL (docs/reliability.md)."""
    sim = smsc_factory(receipt_loss=1.0)
    session = session_factory(sim)
    [result] = submit(session, recorder)
    assert result.message_id != result.raw_message_id  # "1000" vs "0000001000"
    [answer] = session.query([(result.message_id, SOURCE)])
    assert answer.ok
    assert answer.stat == "DELIVRD"


def test_an_smsc_that_compares_ids_as_text_knows_only_the_form_it_gave(smsc_factory, session_factory, recorder):
    sim = smsc_factory(receipt_loss=1.0, query_exact_ids=True)
    session = session_factory(sim)
    [result] = submit(session, recorder)
    exact, normalised = session.query([(result.raw_message_id, SOURCE), (result.message_id, SOURCE)])
    assert exact.stat == "DELIVRD"
    assert normalised.command_status == consts.SMPP_ESME_RQUERYFAIL


def test_unknown_id_and_wrong_source_address_answer_query_fail(smsc_factory, session_factory, recorder):
    sim = smsc_factory()
    session = session_factory(sim)
    [result] = submit(session, recorder)
    unknown, wrong_source = session.query([("ffff0000", SOURCE), (result.raw_message_id, "10690002")])
    assert unknown.command_status == consts.SMPP_ESME_RQUERYFAIL
    assert unknown.stat == ""
    assert wrong_source.command_status == consts.SMPP_ESME_RQUERYFAIL
    assert sim.queries_failed == 2


def test_carrier_without_query_sm_answers_generic_nack(smsc_factory, session_factory, recorder):
    sim = smsc_factory(query_sm_supported=False)
    session = session_factory(sim)
    [result] = submit(session, recorder)
    [answer] = session.query([(result.raw_message_id, SOURCE)])
    assert answer.command_status == consts.SMPP_ESME_RINVCMDID
    assert session.connected  # the bind stays usable
    assert submit(session, recorder, text="after")  # and keeps sending


def test_many_queries_in_flight_within_the_window_answers_in_order(smsc_factory, session_factory, recorder):
    sim = smsc_factory(receipt_loss=1.0)
    session = session_factory(sim, window=3)
    results = []
    for i in range(10):
        results += submit(session, recorder, text=f"m{i}")
    sim.set_state(results[4].raw_message_id, "EXPIRED")
    answers = session.query([(r.raw_message_id, SOURCE) for r in results])
    assert [a.message_id for a in answers] == [r.raw_message_id for r in results]
    assert [a.stat for a in answers] == ["DELIVRD"] * 4 + ["EXPIRED"] + ["DELIVRD"] * 5
    assert sim.queries_received == 10


def test_receipts_arriving_during_a_query_reach_the_callback(smsc_factory, session_factory, recorder):
    """The session reads its one socket while it waits for query answers: deliver_sm that come
    meanwhile are handled (and answered) as always."""
    sim = smsc_factory(receipt_delay=0.05)
    session = session_factory(sim)
    [result] = submit(session, recorder)
    sim.inject_mo("8613800138000", SOURCE, "T")
    session.query([(result.raw_message_id, SOURCE)])
    assert poll_until(session, lambda: len(recorder.inbound) == 2)


def test_unanswered_query_times_out_and_a_dropped_link_reports_disconnected(smsc_factory, session_factory, recorder):
    sim = smsc_factory()
    session = session_factory(sim)
    [result] = submit(session, recorder)
    sim.hang(1.0, new_connections=False)
    [answer] = session.query([(result.raw_message_id, SOURCE)], timeout=0.3)
    assert answer.command_status == STATUS_TIMEOUT

    session2 = session_factory(sim)
    sim.hang(0.5, new_connections=False)  # the answers are held back, then the link drops
    sim.drop_connections(abort=True)
    [answer] = session2.query([(result.raw_message_id, SOURCE)], timeout=2)
    assert answer.command_status == STATUS_DISCONNECTED
    assert not session2.connected


@pytest.mark.parametrize("bind", ["transceiver", "receiver"])
def test_query_works_on_any_bind_that_may_query(smsc_factory, session_factory, recorder, bind):
    sim = smsc_factory(receipt_loss=1.0)
    sender = session_factory(sim)
    [result] = submit(sender, recorder)
    session = session_factory(sim, bind=bind)
    [answer] = session.query([(result.raw_message_id, SOURCE)])
    assert answer.ok
    assert answer.stat == "DELIVRD"
