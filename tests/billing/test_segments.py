"""R-BIL-2: segment counting. GSM-7 160/153 (extension characters cost 2 septets), UCS-2 70/67
(UTF-16 code units: an emoji is 2); a part never splits an escape or a surrogate pair."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsplatform.sms_text import GSM7_BASIC, GSM7_EXTENSION, SegmentCount, count_segments

gsm_basic = st.text(alphabet=sorted(GSM7_BASIC), max_size=800)
gsm_any = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=800)
bmp_chinese = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=400)
any_text = st.text(max_size=600)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SegmentCount("gsm7", 1, 0)),
        ("a" * 160, SegmentCount("gsm7", 1, 160)),
        ("a" * 161, SegmentCount("gsm7", 2, 161)),
        ("a" * 306, SegmentCount("gsm7", 2, 306)),
        ("a" * 307, SegmentCount("gsm7", 3, 307)),
        ("€" * 80, SegmentCount("gsm7", 1, 160)),
        ("€" * 81, SegmentCount("gsm7", 2, 162)),
        ("中" * 70, SegmentCount("ucs2", 1, 70)),
        ("中" * 71, SegmentCount("ucs2", 2, 71)),
        ("中" * 134, SegmentCount("ucs2", 2, 134)),
        ("中" * 135, SegmentCount("ucs2", 3, 135)),
        ("😀" * 35, SegmentCount("ucs2", 1, 70)),
        ("😀" * 36, SegmentCount("ucs2", 2, 72)),
        ("【阿里云】您的验证码是123456，5分钟内有效。", SegmentCount("ucs2", 1, 25)),
    ],
)
def test_r_bil_2_known_counts(text, expected):
    assert count_segments(text) == expected


def test_r_bil_2_escape_is_never_split_across_parts():
    # 152 septets then '€' (2 septets): the escape cannot straddle parts 1/2, so a 2-septet
    # char starting at septet 153 moves to part 2.
    text = "a" * 152 + "€" + "a" * 10
    assert count_segments(text).units == 164
    assert count_segments(text).segments == 2
    text = "a" * 152 + "€" * 77  # 152 + 154 = 306 septets, but the split makes 3 parts
    assert count_segments(text).units == 306
    assert count_segments(text).segments == 3


def test_r_bil_2_surrogate_pair_is_never_split_across_parts():
    text = "中" * 66 + "😀" + "中" * 66  # 134 units (2 × 67) but the emoji moves to part 2 → 3 parts
    assert count_segments(text) == SegmentCount("ucs2", 3, 134)


@given(gsm_basic)
def test_r_bil_2_plain_gsm_follows_160_153(text):
    n = len(text)
    expected = 1 if n <= 160 else math.ceil(n / 153)
    assert count_segments(text) == SegmentCount("gsm7", expected, n)


@given(gsm_any)
def test_r_bil_2_extension_characters_cost_two_septets(text):
    result = count_segments(text)
    assert result.encoding == "gsm7"
    assert result.units == len(text) + sum(ch in GSM7_EXTENSION for ch in text)


@given(bmp_chinese)
def test_r_bil_2_chinese_follows_70_67(text):
    n = len(text)
    expected = 1 if n <= 70 else math.ceil(n / 67)
    assert count_segments(text) == SegmentCount("ucs2", expected, n)


@given(any_text)
def test_r_bil_2_ucs2_counts_utf16_code_units(text):
    result = count_segments(text)
    if result.encoding == "ucs2":
        assert result.units == len(text.encode("utf-16-le")) // 2


@given(any_text)
def test_r_bil_2_segment_bounds(text):
    result = count_segments(text)
    single, part = (160, 153) if result.encoding == "gsm7" else (70, 67)
    if result.units <= single:
        assert result.segments == 1
    else:
        # at least ceil(units/part); at most one wasted unit per part boundary
        assert math.ceil(result.units / part) <= result.segments <= math.ceil(result.units / (part - 1))


@given(any_text, st.characters())
def test_r_bil_2_appending_never_lowers_the_count(text, char):
    before, after = count_segments(text), count_segments(text + char)
    if before.encoding == after.encoding:
        assert after.segments >= before.segments
        assert after.units > before.units


@given(gsm_basic, st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF))
def test_r_bil_2_one_non_gsm_character_makes_the_whole_text_ucs2(text, char):
    assert count_segments(text + char).encoding == "ucs2"
