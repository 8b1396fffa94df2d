"""split_text: GSM-7 / UCS-2, concatenation UDH, never cutting a character (R-DLV-3, R-BIL-2).

The segment-count oracle below is written independently of smsplatform.sms_text; a cross-check
test holds split_text to billing's count_segments."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.smpp.codec import DATA_CODING_DEFAULT, DATA_CODING_UCS2, decode_text, parse_udh, split_text
from smsplatform.sms_text import count_segments, gsm7_decode, gsm7_encode

GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = set("\f^{}\\[~]|€")


def oracle_segments(text: str) -> tuple[str, int]:
    """Billing segment rule: GSM-7 160 single / 153 per part (extension chars = 2 septets),
    else UCS-2 70 / 67 UTF-16 units; a part never ends in the middle of a character."""
    if all(c in GSM_BASIC or c in GSM_EXT for c in text):
        sizes, single, part = [2 if c in GSM_EXT else 1 for c in text], 160, 153
        encoding = "gsm7"
    else:
        sizes, single, part = [2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67
        encoding = "ucs2"
    if sum(sizes) <= single:
        return encoding, 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return encoding, segments


def reassemble(data_coding, payloads, udhs):
    return "".join(decode_text(p, data_coding) for p in payloads)


def test_short_gsm_text_is_one_part_without_udh_r_dlv_3():
    data_coding, payloads, udhs = split_text("Hello", reference=7)
    assert data_coding == DATA_CODING_DEFAULT
    assert payloads == [b"Hello"]
    assert udhs == [None]


def test_160_gsm_chars_fit_one_part_161_need_two_r_dlv_3():
    assert len(split_text("a" * 160, reference=1)[1]) == 1
    data_coding, payloads, udhs = split_text("a" * 161, reference=1)
    assert [len(p) for p in payloads] == [153, 8]
    assert udhs == [b"\x05\x00\x03\x01\x02\x01", b"\x05\x00\x03\x01\x02\x02"]


def test_chinese_text_uses_ucs2_r_dlv_3():
    data_coding, payloads, udhs = split_text("您的验证码是123456", reference=1)
    assert data_coding == DATA_CODING_UCS2
    assert payloads == ["您的验证码是123456".encode("utf-16-be")]
    assert udhs == [None]


def test_long_ucs2_message_three_parts_with_udh_reassembles_r_dlv_3():
    # 67-unit parts: each emoji (a surrogate pair) would straddle a part boundary
    text = "中" * 66 + "😀" + "文" * 64 + "🎉" + "end"
    data_coding, payloads, udhs = split_text(text, reference=200)
    assert data_coding == DATA_CODING_UCS2
    assert len(payloads) == 3
    for seq, udh in enumerate(udhs, start=1):
        assert udh == bytes([5, 0, 3, 200, 3, seq])
    assert all(len(p) <= 134 for p in payloads)
    # each emoji moved whole into the next part: parts 1 and 2 carry 66 units, not 67
    assert len(payloads[0]) == 132
    assert len(payloads[1]) == 132
    assert payloads[2].decode("utf-16-be") == "🎉end"
    assert reassemble(data_coding, payloads, udhs) == text


def test_gsm7_escape_at_boundary_is_not_split_r_dlv_3():
    text = "a" * 152 + "€" + "b" * 20  # '€' = ESC + 0x65 would straddle septets 153/154
    data_coding, payloads, udhs = split_text(text, reference=3)
    assert data_coding == DATA_CODING_DEFAULT
    assert len(payloads[0]) == 152
    assert payloads[1].startswith(b"\x1b\x65")
    assert not payloads[0].endswith(b"\x1b")
    assert reassemble(data_coding, payloads, udhs) == text


def test_extension_chars_count_two_septets_r_bil_2():
    assert count_segments("{" * 80).segments == 1  # 160 septets
    assert count_segments("{" * 81).segments == 2


def test_gsm7_round_trip_whole_alphabet():
    alphabet = "".join(sorted(GSM_BASIC | GSM_EXT))
    assert gsm7_decode(gsm7_encode(alphabet)) == alphabet


def test_non_gsm_character_raises_on_gsm_encode():
    with pytest.raises(ValueError, match="GSM"):
        gsm7_encode("é中")


def test_parse_udh_reads_8_and_16_bit_concat():
    assert parse_udh(b"\x05\x00\x03\x09\x02\x01abc") == ((9, 2, 1), b"abc")
    assert parse_udh(b"\x06\x08\x04\x01\x02\x03\x01xy") == ((258, 3, 1), b"xy")


def test_more_than_255_parts_is_refused():
    with pytest.raises(ValueError, match="255"):
        split_text("中" * 67 * 256, reference=1)


TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(GSM_BASIC)),
        st.sampled_from(sorted(GSM_EXT)),
        st.sampled_from(["中", "é", "😀", "𝄞", "ж"]),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=700,
)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_property_parts_count_equals_billing_segments_r_bil_2(text):
    data_coding, payloads, udhs = split_text(text, reference=1)
    encoding, segments = oracle_segments(text)
    assert len(payloads) == segments
    assert data_coding == (DATA_CODING_DEFAULT if encoding == "gsm7" else DATA_CODING_UCS2)
    assert reassemble(data_coding, payloads, udhs) == text
    limit = (160 if segments == 1 else 153) if encoding == "gsm7" else (140 if segments == 1 else 134)
    assert all(len(p) <= limit for p in payloads)
    if segments > 1:
        assert all(u is not None and u[4] == segments for u in udhs)


def test_concat_buffer_reassembles_mo_parts_in_any_order_r_dlv_5():
    from delivery.smpp.codec import ConcatBuffer

    buf = ConcatBuffer(max_age=10)
    key = ("8613900000001", "10690001")
    assert buf.add(key, (5, 3, 2), "b", now=0) is None
    assert buf.add(key, (5, 3, 3), "c", now=1) is None
    assert buf.add(key, None, "single", now=1) == "single"
    assert buf.add(key, (5, 3, 1), "a", now=2) == "abc"
    assert len(buf) == 0
    assert buf.add(key, (6, 2, 1), "x", now=0) is None
    assert buf.add(key, (7, 2, 1), "y", now=20) is None  # (6, …) expired meanwhile
    assert len(buf) == 1


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_property_split_text_agrees_with_billing_count_segments_r_bil_2(text):
    """Cross-check: what billing counts is what the session sends."""
    data_coding, payloads, _udhs = split_text(text, reference=1)
    counted = count_segments(text)
    assert counted.segments == len(payloads)
    assert counted.encoding == ("gsm7" if data_coding == DATA_CODING_DEFAULT else "ucs2")
