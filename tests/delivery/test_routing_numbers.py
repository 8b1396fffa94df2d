"""Number normalisation fast paths agree with phonenumbers.parse() (R-DLV-1 invalid_number,
R-DLV-2 carrier by prefix): the intake skips parsing for 11-digit Chinese mobile numbers and for
the second look at "+86" numbers, and must answer exactly as the full parse would."""

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from delivery.models import CarrierPrefix
from delivery.routing import describe_numbers
from smsplatform.numbers import normalise_strict, strict_by_full_parse

SUFFIXES = ("0000000", "1234567", "9999999")


def every_mobile_shape() -> list[str]:
    """Every 4-digit prefix 1000–1999 (valid, invalid, carrier-code 11/12/179 ones) × 3 suffixes,
    bare and with +86, and a few near misses (10 and 12 digits, spaces)."""
    numbers = []
    for prefix in range(1000, 2000):
        for suffix in SUFFIXES:
            national = f"{prefix}{suffix}"
            numbers += [national, f"+86{national}", national[:-1], f"{national}0", f" {national} "]
    return numbers


def test_mobile_fast_path_equals_full_parse_for_every_prefix_R_DLV_1():
    mismatches = [n for n in every_mobile_shape() if normalise_strict(n) != strict_by_full_parse(n.strip())]
    assert mismatches == []
    assert normalise_strict("13800138000") == "+8613800138000"  # the fast path is taken and right
    assert normalise_strict("+8612345678901") is None


def test_segment_memo_equals_full_parse_for_every_5_digit_prefix_R_DLV_1():
    """Validity is memoised per 7-digit segment: whatever suffix comes first for a segment, every
    other number of that segment gets the answer the full parse gives it."""
    mismatches = []
    for prefix in range(13000, 20000):
        for middle in ("00", "59", "99"):
            for suffix in ("0000", "5173", "9999"):
                national = f"{prefix}{middle}{suffix}"
                if normalise_strict(national) != strict_by_full_parse(national):
                    mismatches.append(national)
    assert mismatches == []


@given(st.text(alphabet="+0123456789 -", max_size=18))
def test_normalise_number_equals_full_parse_for_any_digit_string_R_DLV_1(text):
    assert normalise_strict(text) == strict_by_full_parse(text.strip())


@pytest.mark.django_db
def test_describe_numbers_fast_path_gives_the_parsed_country_and_carrier_R_DLV_2():
    numbers = sorted({n for n in map(normalise_strict, every_mobile_shape()) if n} | {"+14155550123", "+85291234567"})
    facts = describe_numbers(numbers)
    prefixes = dict(CarrierPrefix.objects.values_list("prefix", "carrier"))
    for number in numbers:
        parsed = phonenumbers.parse(number, None)
        assert facts[number].country == phonenumbers.region_code_for_number(parsed), number
        national = str(parsed.national_number)
        expected = next((prefixes[national[:k]] for k in range(len(national), 0, -1) if national[:k] in prefixes), "")
        assert facts[number].carrier == (expected if facts[number].country == "CN" else ""), number


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("8613900000419", "+8613900000419", True),  # E.164 with and without +
        ("13900000419", "+8613900000419", True),  # national in the receipt
        ("8613900000419", "+8613900001049", False),
        ("0419", "+8613900000419", False),  # a short tail is no proof
        ("", "+8613900000419", True),  # no address: nothing to compare
    ],
)
def test_same_handset_compares_as_smscs_write_numbers_R_DLV_4(a, b, same):
    from smsplatform.numbers import same_handset

    assert same_handset(a, b) is same
    assert same_handset(b, a) is same
