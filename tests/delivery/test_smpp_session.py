"""SmppSession against the real SmscSimulator socket (R-DLV-3, R-DLV-4). No mocks."""

from tests.delivery.conftest import poll_until


def test_round_trip_submit_response_receipt_matched_r_dlv_3_r_dlv_4(smsc_factory, session_factory, recorder):
    sim = smsc_factory(receipt_delay=0.05)
    session = session_factory(sim)
    parts = session.submit(ref="m1", source="10690001", destination="+8613800000001", text="Hello world")
    assert parts == 1
    session.drain(5)
    assert session.outstanding == 0
    [result] = recorder.results
    assert result.ref == "m1"
    assert result.part == 1
    assert result.parts == 1
    assert result.command_status == 0
    assert not result.transient
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
