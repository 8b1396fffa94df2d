"""Pure receipt parsing and message-id normalisation (R-DLV-4)."""

from datetime import UTC, datetime

import pytest

from delivery.smpp.receipts import STAT_TO_STATUS, message_id_variants, normalise_message_id, parse_receipt

STANDARD = (
    "id:0000A1B2C3 sub:001 dlvrd:001 submit date:2511231030 done date:2511231031 "
    "stat:DELIVRD err:000 text:Hello world stat:ignored"
)


def test_parse_standard_receipt_text_r_dlv_4():
    receipt = parse_receipt(short_message=STANDARD.encode())
    assert receipt.message_id == "a1b2c3"
    assert receipt.raw_message_id == "0000A1B2C3"
    assert receipt.stat == "DELIVRD"
    assert receipt.status == "delivered"
    assert receipt.err == "000"
    assert receipt.sub == "001"
    assert receipt.dlvrd == "001"
    assert receipt.submit_date == datetime(2025, 11, 23, 10, 30, tzinfo=UTC)
    assert receipt.done_date == datetime(2025, 11, 23, 10, 31, tzinfo=UTC)
    assert receipt.text == "Hello world stat:ignored"
    assert receipt.final


def test_parse_receipt_keys_are_case_insensitive_and_dates_may_have_seconds_r_dlv_4():
    receipt = parse_receipt(
        short_message="ID:77 SUB:001 DLVRD:000 SUBMIT DATE:251123103005 DONE DATE:251123103159 STAT:undeliv ERR:034"
    )
    assert receipt.message_id == "77"
    assert receipt.stat == "UNDELIV"
    assert receipt.status == "undelivered"
    assert receipt.err == "034"
    assert receipt.submit_date == datetime(2025, 11, 23, 10, 30, 5, tzinfo=UTC)
    assert receipt.done_date == datetime(2025, 11, 23, 10, 31, 59, tzinfo=UTC)


def test_parse_receipt_tolerates_missing_fields_r_dlv_4():
    receipt = parse_receipt(short_message="id:abc stat:EXPIRED")
    assert receipt.message_id == "abc"
    assert receipt.status == "expired"
    assert receipt.err == ""
    assert receipt.submit_date is None
    assert receipt.done_date is None


def test_parse_receipt_without_stat_is_unknown_r_dlv_4():
    receipt = parse_receipt(short_message="garbage")
    assert receipt.stat == "UNKNOWN"
    assert receipt.status == "unknown"
    assert receipt.message_id == ""


def test_parse_receipt_invalid_date_gives_none_r_dlv_4():
    receipt = parse_receipt(short_message="id:1 submit date:9913991299 stat:DELIVRD")
    assert receipt.submit_date is None


def test_tlvs_win_over_text_r_dlv_4():
    receipt = parse_receipt(
        short_message="id:12345 stat:DELIVRD err:000",
        tlvs={"receipted_message_id": b"0003039", "message_state": 5},
    )
    assert receipt.message_id == "3039"
    assert receipt.stat == "UNDELIV"
    assert receipt.status == "undelivered"


def test_tlvs_by_numeric_tag_and_without_text_r_dlv_4():
    receipt = parse_receipt(short_message=b"", tlvs={0x001E: "FF01", 0x0427: 8, 0x0423: b"\x03\x00\x2a"})
    assert receipt.message_id == "ff01"
    assert receipt.stat == "REJECTD"
    assert receipt.status == "rejected"
    assert receipt.err == "042"


@pytest.mark.parametrize(
    ("stat", "status", "final"),
    [
        ("DELIVRD", "delivered", True),
        ("UNDELIV", "undelivered", True),
        ("EXPIRED", "expired", True),
        ("REJECTD", "rejected", True),
        ("DELETED", "failed", True),
        ("UNKNOWN", "unknown", True),
        ("ACCEPTD", "submitted", False),
        ("ENROUTE", "submitted", False),
    ],
)
def test_stat_maps_to_our_status_r_dlv_4(stat, status, final):
    receipt = parse_receipt(short_message=f"id:1 stat:{stat} err:000")
    assert receipt.status == status
    assert receipt.final is final
    assert STAT_TO_STATUS[stat] == status


def test_unrecognised_stat_maps_to_unknown_r_dlv_4():
    assert parse_receipt(short_message="id:1 stat:WEIRD").status == "unknown"


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("0000A1B2C3", "a1b2c3"),
        ("a1b2c3", "a1b2c3"),
        (" A1B2C3\x00", "a1b2c3"),
        ("0000012345", "12345"),
        (12345, "12345"),
        (b"00FF", "ff"),
        ("0000", "0"),
        ("", ""),
        ("abc-DEF-0001", "abc-def-0001"),
    ],
)
def test_normalise_message_id_corpus_r_dlv_4(raw, normalised):
    assert normalise_message_id(raw) == normalised


@pytest.mark.parametrize(
    ("submit_resp_id", "receipt_id"),
    [
        ("0000001000", "0000004096"),  # hex in submit_sm_resp, decimal in the receipt
        ("4096", "1000"),  # decimal in submit_sm_resp, hex in the receipt
        ("00ABCDEF", "11259375"),
        ("abcdef", "00ABCDEF"),  # same hex, different case / padding
        ("0000012345", "12345"),  # same decimal, padding
    ],
)
def test_message_id_variants_match_hex_and_decimal_forms_r_dlv_4(submit_resp_id, receipt_id):
    stored = normalise_message_id(submit_resp_id)
    assert stored in message_id_variants(receipt_id)


def test_message_id_variants_of_non_numeric_id_is_itself_r_dlv_4():
    assert message_id_variants("msg-00A") == {"msg-00a"}


@pytest.mark.parametrize(
    "text",
    [
        "id:0A1B2C sub:001 dlvrd:001 submit date:2611301200 done date:2611301201 stat:DELIVRD err:000 text:hello",
        "id:12 sub:001 dlvrd:000 submit date:261130120005 done date:261130120107 stat:UNDELIV err:034",
        "id:12 sub:001 dlvrd:000 submit date:2611301200 done date:2611301201 stat:EXPIRED err:000 text:  a b:c  ",
        "id:12 sub:001 dlvrd:000 submit date:2611301200 done date:2611301201 stat:REJECTD err:000 text:stat:DELIVRD",
        "id:x-id:5 sub:001 dlvrd:001 submit date:2611301200 done date:2611301201 stat:DELIVRD err:000",  # key in a value
        "id:7 sub:001 dlvrd:001 submit date:2611301200 done date:2611301201 stat:DELIVRD-err:9 err:000",
        "id:7 sub:001 dlvrd:001 submit date:2611301200 done date:2611301201 stat:DELIVRD  err:000 text:x",
        "ID:7 SUB:001 DLVRD:001 SUBMIT DATE:2611301200 DONE DATE:2611301201 STAT:DELIVRD ERR:000 TEXT:x",
        "id:7 sub:001 dlvrd:001 submit date:26113012 done date:2611301201 stat:DELIVRD err:000",  # short date
        "id: sub: dlvrd: submit date:2611301200 done date:2611301201 stat: err: text:",
    ],
)
def test_standard_receipt_fast_path_reads_like_the_general_parser_r_dlv_4(text, monkeypatch):
    """The one-regex path for appendix-B text as written (issue 16) gives the general parser's
    fields and receipt for any text, standard or not (a text it does not match goes that way)."""
    from delivery.smpp import receipts

    assert receipts._parse_fields(text) == receipts._parse_any_fields(text)
    fast = parse_receipt(short_message=text)
    monkeypatch.setattr(receipts, "_parse_fields", receipts._parse_any_fields)
    assert fast == parse_receipt(short_message=text)
