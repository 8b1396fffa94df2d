"""codec.make_pdu / codec.parse_pdu: the submit_sm the platform sends is smpplib's encoding, byte
for byte, through smpplib's SubmitSM narrowed to the mandatory parameters, and a deliver_sm reads
exactly as smpplib parses it (issue 16: speed); a submit_sm with an optional TLV goes through
smpplib's full class (R-DLV-3, R-DLV-4)."""

import pytest
from smpplib import client as smpp_client
from smpplib import command as smpp_command
from smpplib import smpp

from delivery.smpp.codec import make_pdu, parse_pdu, submit_pdus

CLIENT = smpp_client.Client("127.0.0.1", 1, allow_unknown_opt_params=True)

CASES = [
    dict(source="10690001", destination="+8613800000001", text="Hello world", registered_delivery=True),
    dict(source="SHOP", destination="8613800000002", text="a" * 152 + "€" + "[b]" * 10, registered_delivery=False),
    dict(source="+8610690", destination="+447700900123", text="中" * 66 + "😀" + "文" * 64, registered_delivery=True),
    dict(source="", destination="+8613800000003", text="", registered_delivery=True),
]


def smpplib_bytes(command: str, fields: dict, sequence: int) -> bytes:
    pdu = smpp.make_pdu(command, client=CLIENT, **fields)
    pdu.sequence = sequence
    return pdu.generate()


@pytest.mark.parametrize("case", CASES)
def test_submit_sm_bytes_are_smpplibs_for_every_part_R_DLV_3(case):
    parts = submit_pdus(reference=77, dest_addr_ton=1, **case)
    for sequence, fields in enumerate(parts, start=1):
        ours = make_pdu("submit_sm", CLIENT, dict(fields))
        ours.sequence = sequence
        raw = ours.generate()
        assert raw == smpplib_bytes("submit_sm", fields, sequence)
        back = smpp.parse_pdu(raw, client=CLIENT)
        assert (back.destination_addr, back.short_message) == (
            fields["destination_addr"].encode(),
            fields["short_message"] or None,
        )


def test_submit_sm_with_an_optional_tlv_goes_through_smpplibs_whole_class_R_DLV_3():
    [fields] = submit_pdus(
        source="10690001",
        destination="+8613800000001",
        text="payload",
        reference=1,
        registered_delivery=True,
        dest_addr_ton=1,
    )
    fields = {**fields, "short_message": None, "message_payload": b"payload", "validity_period": "000001000000000R"}
    ours = make_pdu("submit_sm", CLIENT, fields)
    ours.sequence = 9
    raw = ours.generate()
    assert raw == smpplib_bytes("submit_sm", fields, 9)
    assert b"\x04\x24\x00\x07payload" in raw  # message_payload TLV (0x0424), not dropped


RECEIPT = b"id:0A1b2C sub:001 dlvrd:001 submit date:2611301725 done date:2611301726 stat:UNDELIV err:034 text:"
DELIVERS = [
    dict(
        esm_class=4,
        short_message=RECEIPT,
        receipted_message_id="0A1b2C",
        message_state=5,
        network_error_code=b"\x03\x00\x22",
    ),
    dict(esm_class=4, short_message=RECEIPT),  # receipt text only
    dict(esm_class=0x40, data_coding=8, short_message=bytes([5, 0, 3, 9, 2, 1]) + "退订".encode("utf-16-be")),
    dict(esm_class=0, short_message=None, message_payload=b"STOP " * 60),
    dict(esm_class=0, short_message=b"TD", sar_msg_ref_num=7, sar_total_segments=2, sar_segment_seqnum=1),
]


@pytest.mark.parametrize("fields", DELIVERS)
def test_deliver_sm_reads_as_smpplib_parses_it_R_DLV_4(fields):
    raw = smpplib_bytes("deliver_sm", dict(source_addr="8613800000001", destination_addr="10690001", **fields), 41)
    theirs = smpp.parse_pdu(raw, client=CLIENT, sequence=0, allow_unknown_opt_params=True)
    ours = parse_pdu(raw, CLIENT)
    for name in (*smpp_command.DeliverSM.params, "command", "sequence", "status"):
        assert getattr(ours, name, None) == getattr(theirs, name, None), name
    assert ours.sequence == 41
    assert parse_pdu(smpplib_bytes("submit_sm_resp", {"message_id": "ab12"}, 5), CLIENT).message_id == b"ab12"
